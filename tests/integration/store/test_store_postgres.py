"""The store contract against a real PostgreSQL 15 (a throwaway cluster from conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "store"))
from store_contract import T0, StoreContract  # noqa: E402

from ivr.journey import CallRecord  # noqa: E402
from ivr.store.postgres import PostgresStore  # noqa: E402

pytestmark = pytest.mark.integration


class TestPostgresStore(StoreContract):
    pass


def test_a_lost_connection_is_retried_without_losing_writes(
    open_store: Callable[..., PostgresStore], fresh_database: str
) -> None:
    import psycopg

    store = open_store()
    store.call_started(CallRecord("before", "1", "2", T0))
    assert store.flush(10)
    name = fresh_database.rsplit("/", 1)[1]
    with psycopg.connect(fresh_database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    store.call_started(CallRecord("after", "1", "2", T0))
    assert store.flush(30)
    assert store.get_call("after") is not None
    assert store.failed_writes == 0
