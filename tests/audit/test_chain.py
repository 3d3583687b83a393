"""The hash chain: its canonical form, its links, and ``verify`` finding each kind of tampering
done directly in the database."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tenure.audit import chain, recorder
from tenure.audit import service as audit_service
from tenure.audit.chain import GENESIS, Problem, Verification
from tenure.db import unit_of_work
from tests.audit.conftest import Entries, Tamper

ENTRY = {
    "seq": 7,
    "occurred_at": datetime(2026, 3, 1, 9, 30, 5, 120, tzinfo=UTC),
    "actor_id": 3,
    "actor_email": "ann@example.com",
    "action": "customer.updated",
    "entity_type": "customer",
    "entity_id": "42",
    "request_id": "req-1",
    "client_address": "10.0.0.8",
    "changes": {"name": {"old": "Ada", "new": "Ada L\u00f6we"}},
    "details": {},
    "prev_hash": "ab" * 32,
}


def _write(sessions: sessionmaker[Session], count: int) -> None:
    """``count`` entries, one transaction each."""
    for n in range(count):
        with unit_of_work(sessions) as s:
            recorder.add(s, action="test.event", details={"n": n})


def _verify(sessions: sessionmaker[Session], **kwargs: object) -> Verification:
    with sessions() as s:
        return chain.verify(s.connection(), **kwargs)  # type: ignore[arg-type]


def test_the_canonical_form_is_sorted_compact_ascii_json_with_a_fixed_time_format() -> None:
    expected = (
        b'{"action":"customer.updated","actor_email":"ann@example.com","actor_id":3,'
        b'"changes":{"name":{"new":"Ada L\\u00f6we","old":"Ada"}},"client_address":"10.0.0.8",'
        b'"details":{},"entity_id":"42","entity_type":"customer",'
        b'"occurred_at":"2026-03-01T09:30:05.000120Z","prev_hash":"' + b"ab" * 32 + b'",'
        b'"request_id":"req-1","seq":7}'
    )

    assert chain.canonical(ENTRY) == expected
    assert chain.entry_hash(ENTRY) == hashlib.sha256(expected).hexdigest()


def test_the_canonical_form_does_not_depend_on_the_time_zone_or_the_hash_field() -> None:
    elsewhere = {
        **ENTRY,
        "occurred_at": datetime.fromisoformat("2026-03-01T10:30:05.000120+01:00"),
        "hash": "anything",
    }

    assert chain.canonical(elsewhere) == chain.canonical(ENTRY)


def test_entries_are_numbered_from_one_and_each_links_to_the_one_before(
    sessions: sessionmaker[Session], entries: Entries
) -> None:
    _write(sessions, 3)

    log = entries()
    assert [e.seq for e in log] == [1, 2, 3]
    assert [e.prev_hash for e in log] == [GENESIS, log[0].hash, log[1].hash]
    for e in log:
        assert e.hash == hashlib.sha256(chain.canonical(vars(e))).hexdigest()


def test_verify_reports_the_number_of_entries_and_the_head_of_an_intact_chain(
    sessions: sessionmaker[Session], entries: Entries
) -> None:
    _write(sessions, 5)

    assert _verify(sessions) == Verification(entries=5, head_hash=entries()[-1].hash, problem=None)


def test_an_empty_log_is_intact(sessions: sessionmaker[Session]) -> None:
    assert _verify(sessions) == Verification(entries=0, head_hash=None, problem=None)


def test_verify_walks_long_chains_in_batches_and_reports_progress(
    sessions: sessionmaker[Session],
) -> None:
    _write(sessions, 5)
    seen: list[tuple[int, int]] = []

    result = _verify(sessions, batch=2, progress=lambda done, total: seen.append((done, total)))

    assert result.entries == 5 and result.intact
    assert seen == [(2, 5), (4, 5), (5, 5)]


# --- tampering, done directly in the database ---------------------------------------------


def test_verify_finds_an_entry_whose_field_was_changed(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 5)

    tamper("UPDATE audit_entry SET action = 'test.harmless' WHERE seq = 3", None)

    assert _verify(sessions) == Verification(
        entries=2,
        head_hash=None,
        problem=Problem(3, "altered", "entry 3 was altered: its hash does not match"),
    )


def test_verify_finds_an_entry_whose_changes_were_rewritten(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 4)

    tamper("UPDATE audit_entry SET details = '{\"n\": 99}' WHERE seq = 2", None)

    problem = _verify(sessions).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (2, "altered")


def test_verify_finds_an_entry_altered_and_rehashed_by_the_link_from_the_next_one(
    sessions: sessionmaker[Session], entries: Entries, tamper: Tamper
) -> None:
    _write(sessions, 5)
    forged = {**vars(entries()[2]), "action": "test.harmless"}

    tamper(
        "UPDATE audit_entry SET action = 'test.harmless', hash = :h WHERE seq = 3",
        {"h": chain.entry_hash(forged)},
    )

    assert _verify(sessions).problem == Problem(
        3, "altered", "entry 3 was altered: entry 4 links to a different version of it"
    )


def test_verify_finds_an_entry_removed_from_the_middle(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 5)

    tamper("DELETE FROM audit_entry WHERE seq = 3", None)

    assert _verify(sessions) == Verification(
        entries=2,
        head_hash=None,
        problem=Problem(3, "removed", "entry 3 is missing: the chain goes from entry 2 to 4"),
    )


def test_verify_finds_the_first_entry_removed(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 3)

    tamper("DELETE FROM audit_entry WHERE seq = 1", None)

    problem = _verify(sessions).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (1, "removed")


def test_verify_finds_two_entries_whose_places_were_swapped(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 6)

    tamper(
        "UPDATE audit_entry SET seq = 0 WHERE seq = 2;"
        "UPDATE audit_entry SET seq = 2 WHERE seq = 5;"
        "UPDATE audit_entry SET seq = 5 WHERE seq = 0",
        None,
    )

    assert _verify(sessions) == Verification(
        entries=1,
        head_hash=None,
        problem=Problem(
            2,
            "reordered",
            "entry 2 is out of order: it was written after the entry now at position 4, "
            "not after entry 1",
        ),
    )


def test_verify_finds_neighbours_swapped(sessions: sessionmaker[Session], tamper: Tamper) -> None:
    _write(sessions, 4)

    tamper(
        "UPDATE audit_entry SET seq = 0 WHERE seq = 2;"
        "UPDATE audit_entry SET seq = 2 WHERE seq = 3;"
        "UPDATE audit_entry SET seq = 3 WHERE seq = 0",
        None,
    )

    problem = _verify(sessions).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (2, "reordered")


def test_verify_finds_an_entry_moved_to_the_front(
    sessions: sessionmaker[Session], tamper: Tamper
) -> None:
    _write(sessions, 3)

    tamper("UPDATE audit_entry SET seq = 0 WHERE seq = 3", None)

    assert _verify(sessions).problem == Problem(
        1, "reordered", "entry 1 is out of order: an entry numbered 0 comes before it"
    )


def test_the_service_verifies_through_a_session(sessions: sessionmaker[Session]) -> None:
    _write(sessions, 2)

    with sessions() as s:
        assert audit_service.verify(session=s).entries == 2


# --- append-only in the database itself ---------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_entry SET action = 'x' WHERE seq = 1", "DELETE FROM audit_entry WHERE seq = 1"],
)
def test_the_database_refuses_to_change_or_remove_an_entry(
    sessions: sessionmaker[Session], engine: Engine, entries: Entries, statement: str
) -> None:
    _write(sessions, 1)
    before = [vars(e) | {"_sa_instance_state": None} for e in entries()]

    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))

    assert [vars(e) | {"_sa_instance_state": None} for e in entries()] == before


@pytest.mark.postgres
def test_postgresql_refuses_to_truncate_the_log(
    sessions: sessionmaker[Session], engine: Engine, entries: Entries
) -> None:
    _write(sessions, 1)

    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_entry"))

    assert len(entries()) == 1


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_writers_never_fork_the_chain(
    sessions: sessionmaker[Session], entries: Entries
) -> None:
    writers, each = 4, 10
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def work(worker: int) -> None:
        try:
            start.wait()
            for n in range(each):
                with unit_of_work(sessions) as s:
                    recorder.add(s, action="test.event", details={"worker": worker, "n": n})
                    recorder.add(s, action="test.event", details={"worker": worker, "m": n})
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert [e.seq for e in entries()] == list(range(1, writers * each * 2 + 1))
    assert _verify(sessions).entries == writers * each * 2
    assert _verify(sessions).intact
