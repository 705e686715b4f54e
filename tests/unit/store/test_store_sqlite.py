from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from store_contract import T0, StoreContract, sample_calls, write_calls

from ivr.clock import FakeClock
from ivr.journey import CallRecord, Outcome
from ivr.store import DispatchAction, DispatchEntry, MigrationError, SqliteStore, Synchronous, sqlstore

OpenStore = Callable[..., SqliteStore]


class TestSqliteStore(StoreContract):
    pass


def test_wal_journal_and_full_sync(open_store: OpenStore, tmp_path: Path) -> None:
    store = open_store()
    assert store.synchronous is Synchronous.FULL
    raw = sqlite3.connect(tmp_path / "calls.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    assert store.writes.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_writes_queue_while_the_database_is_locked_and_commit_after(
    open_store: OpenStore, tmp_path: Path
) -> None:
    store = open_store()
    blocker = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer thread must wait
    calls = sample_calls()[:20]
    for call in calls:  # none of these may block: they only queue
        store.call_started(call.record)
        store.call_finished(call.record)
    assert store.flush(timeout_s=0) is False
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.flush(10)
    assert {r.call_id for r in store.list_calls(store_query()).records} == {c.record.call_id for c in calls}


def store_query():  # type: ignore[no-untyped-def]
    from ivr.store import CallQuery

    return CallQuery(limit=1000)


def test_database_newer_than_the_code_is_refused(open_store: OpenStore, tmp_path: Path) -> None:
    open_store().close()
    raw = sqlite3.connect(tmp_path / "calls.db")
    raw.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
    raw.commit()
    raw.close()
    with pytest.raises(MigrationError, match=r"calls\.db: database schema version 99 is newer"):
        SqliteStore(tmp_path / "calls.db")


def _migrations(tmp_path: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    monkeypatch.setattr(sqlstore, "MIGRATIONS_DIR", tmp_path / "migrations")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_init.sql": "SELECT 1;"}, r"1_init\.sql: migration files are named NNNN_snake_name\.sql"),
        (
            {"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"},
            r"0003_c\.sql: expected migration number 0002",
        ),
    ],
    ids=["bad-name", "gap"],
)
def test_malformed_migration_files_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    _migrations(tmp_path, files, monkeypatch)
    with pytest.raises(MigrationError, match=message):
        SqliteStore(tmp_path / "x.db")


def test_failed_migration_rolls_back_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = (sqlstore.MIGRATIONS_DIR / "sqlite" / "0001_initial.sql").read_text()
    _migrations(
        tmp_path,
        {"0001_initial.sql": real, "0002_broken.sql": "CREATE TABLE half (x INTEGER);\nSELEKT nonsense;"},
        monkeypatch,
    )
    with pytest.raises(MigrationError, match=r"0002_broken\.sql: .*syntax error"):
        SqliteStore(tmp_path / "x.db")
    raw = sqlite3.connect(tmp_path / "x.db")
    assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    assert raw.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    raw.close()


def test_survey_time_comes_from_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStore(tmp_path / "s.db", clock=clock)
    store.call_started(CallRecord("c", "1", "2", T0))
    store.record_survey("c", 10)
    store.close()
    raw = sqlite3.connect(tmp_path / "s.db")
    assert raw.execute("SELECT score, at FROM surveys").fetchone() == (
        10,
        clock.wall().isoformat(timespec="microseconds"),
    )
    raw.close()


def test_interrupted_calls_count_in_the_summary_but_not_as_finished(open_store: OpenStore) -> None:
    calls = sample_calls()
    write_calls(open_store(), calls)
    summary = open_store().summary(T0, T0 + timedelta(days=1))
    assert summary.interrupted == sum(1 for c in calls if not c.finished)
    assert summary.in_progress == 0
    assert summary.finished == sum(
        1 for c in calls if c.finished and c.record.outcome is not Outcome.INTERRUPTED
    )


def test_a_database_with_the_first_dispatch_log_opens_and_keeps_its_entries(tmp_path: Path) -> None:
    """A running hotline upgrades in place: a file made by the first schema (dispatch by agent count
    per queue) migrates to the dispatch-change log, its old entries kept."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.executescript((sqlstore.MIGRATIONS_DIR / "sqlite" / "0001_initial.sql").read_text())
    raw.execute(sqlstore.CREATE_SCHEMA_VERSION)
    raw.execute("INSERT INTO schema_version VALUES (1, 'initial', '2026-01-01T00:00:00.000000+00:00')")
    raw.execute(
        "INSERT INTO dispatch_log (at, queue, from_regions, agents_requested, agents_moved, reason, "
        "requested_by, accepted, detail) VALUES (?, 'claims', '[\"guangzhou\"]', 12, 10, '台风', 'ops', 1, 'ok')",
        [T0.isoformat(timespec="microseconds")],
    )
    raw.commit()
    raw.close()
    store = SqliteStore(path, clock=FakeClock())
    try:
        assert store.schema_version == len(sqlstore.load_migrations("sqlite"))
        (old,) = store.dispatches()
        assert (old.action, old.queues, old.helper_sites, old.accepted) == (
            DispatchAction.START, ("claims",), ("guangzhou",), True
        )
        assert (old.at, old.reason, old.requested_by, old.detail) == (T0, "台风", "ops", "ok; 10 of 12 agents moved")
        new = DispatchEntry(T0 + timedelta(hours=1), DispatchAction.END, True, dispatch_id="d1", region="south")
        store.log_dispatch(new)
        assert store.flush(5)
        assert store.dispatches() == [new, old]
    finally:
        store.close()
