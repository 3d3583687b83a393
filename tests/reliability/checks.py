"""What a sound database looks like after a fault: checks shared by the reliability tests."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import Engine, make_url, text

from tenure.config import Settings
from tenure.sqlite import sqlite3
from tests.reliability.served import server_env

ORDERS_WITHOUT_LINES = """
SELECT o.id FROM sales_order o
WHERE NOT EXISTS (SELECT 1 FROM order_line l WHERE l.order_id = o.id)
"""
LINES_MISPRICED = "SELECT id FROM order_line WHERE line_total <> quantity * unit_price"
TOTALS_MISMATCHED = """
SELECT o.id FROM sales_order o JOIN order_line l ON l.order_id = o.id
GROUP BY o.id, o.total HAVING SUM(l.line_total) <> o.total
"""


def sqlite_problems(settings: Settings) -> list[str]:
    """``PRAGMA integrity_check`` and ``foreign_key_check`` of the SQLite file, opened
    afresh as the next process to open it after a crash would (replaying the WAL)."""
    path = make_url(settings.sqlalchemy_url).database
    assert path
    conn = sqlite3.connect(path)
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        found = [] if found == ["ok"] else found
        found += [f"dangling reference: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
    finally:
        conn.close()
    return found


def partial_orders(engine: Engine) -> dict[str, list[int]]:
    """Orders written in part: without lines, lines whose total is not quantity times
    price, or an order total that is not the sum of its lines. Empty when none."""
    with engine.connect() as conn:
        found = {
            name: [int(row[0]) for row in conn.execute(text(query))]
            for name, query in (
                ("orders without lines", ORDERS_WITHOUT_LINES),
                ("lines mispriced", LINES_MISPRICED),
                ("totals mismatched", TOTALS_MISMATCHED),
            )
        }
    return {name: ids for name, ids in found.items() if ids}


def audit_chain_intact(settings: Settings) -> None:
    """``tenure audit verify``: the hash chain of the audit log is whole."""
    result = subprocess.run(
        [sys.executable, "-m", "tenure", "audit", "verify"],
        env=server_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chain intact" in result.stdout
