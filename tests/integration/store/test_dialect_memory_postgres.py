"""Caller dialect memory in PostgreSQL: what one node remembers, another node reads; a dropped connection
is reconnected; the store's purge forgets callers who have not called in the retention period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ivr.store.dialects import PostgresDialectMemory, open_dialect_memory
from ivr.store.postgres import PostgresStore

pytestmark = pytest.mark.integration


def test_two_nodes_share_what_a_caller_chose(open_store: Callable[..., PostgresStore], fresh_database: str) -> None:
    open_store()  # migrates: creates caller_dialects
    node_a, node_b = open_dialect_memory(fresh_database), open_dialect_memory(fresh_database)
    assert isinstance(node_a, PostgresDialectMemory)
    try:
        assert node_b.get("13800138000") is None
        node_a.set("13800138000", "yue")
        assert node_b.get("13800138000") == "yue"
        node_b.set("13800138000", "hak")
        assert node_a.get("13800138000") == "hak"
    finally:
        node_a.close()
        node_b.close()


def test_a_dropped_connection_is_reconnected(open_store: Callable[..., PostgresStore], fresh_database: str) -> None:
    import psycopg

    open_store()
    memory = open_dialect_memory(fresh_database)
    try:
        memory.set("13900000001", "nan")
        name = fresh_database.rsplit("/", 1)[1]
        with psycopg.connect(fresh_database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        assert memory.get("13900000001") == "nan"
    finally:
        memory.close()


def test_retention_forgets_a_caller_who_has_not_called(
    open_store: Callable[..., PostgresStore], fresh_database: str
) -> None:
    store = open_store()
    memory = open_dialect_memory(fresh_database)
    try:
        memory.set("13900000002", "wuu")
        assert store.purge(datetime.now(UTC) - timedelta(days=1)).caller_dialects == 0
        assert memory.get("13900000002") == "wuu"
        assert store.purge(datetime.now(UTC) + timedelta(seconds=5)).caller_dialects == 1
        assert memory.get("13900000002") is None
    finally:
        memory.close()
