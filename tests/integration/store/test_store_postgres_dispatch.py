"""A PostgreSQL database made by the first schema (dispatch counted agents per queue) upgrades in
place to the dispatch-change log, its old entries kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.clock import FakeClock
from ivr.store import DispatchAction, DispatchEntry, sqlstore
from ivr.store.postgres import PostgresStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_database_with_the_first_dispatch_log_migrates_keeping_its_entries(fresh_database: str) -> None:
    import psycopg

    with psycopg.connect(fresh_database) as conn:
        conn.execute((sqlstore.MIGRATIONS_DIR / "postgres" / "0001_initial.sql").read_text())
        conn.execute(sqlstore.CREATE_SCHEMA_VERSION)
        conn.execute("INSERT INTO schema_version VALUES (1, 'initial', '2026-01-01T00:00:00+00:00')")
        conn.execute(
            "INSERT INTO dispatch_log (at, queue, from_regions, agents_requested, agents_moved, reason, "
            "requested_by, accepted, detail) VALUES (%s, 'claims', '[\"guangzhou\"]', 12, 0, '台风', 'ops', "
            "FALSE, '')",
            [T0],
        )
    store = PostgresStore(fresh_database, node_id="n1", clock=FakeClock())
    try:
        assert store.schema_version == len(sqlstore.load_migrations("postgres"))
        (old,) = store.dispatches()
        assert old == DispatchEntry(
            at=T0, action=DispatchAction.START, accepted=False, queues=("claims",), helper_sites=("guangzhou",),
            reason="台风", requested_by="ops", detail="0 of 12 agents moved",
        )  # fmt: skip
        new = DispatchEntry(T0 + timedelta(hours=1), DispatchAction.END, True, dispatch_id="d1", region="south")
        store.log_dispatch(new)
        assert store.flush(5)
        assert store.dispatches() == [new, old]
    finally:
        store.close()
