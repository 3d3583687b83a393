"""The tamper-evident audit log: an append-only, hash-chained record of who did what."""
