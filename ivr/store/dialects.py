"""Caller dialect memory kept in the engine's database, wherever `db` points.

A SQLite `db` uses `ivr.voice.SqliteDialectMemory` on the same file (the store's migrations create the
same `caller_dialects` table); a `postgresql://` URL uses `PostgresDialectMemory`, so every node of a
cluster greets a returning caller in the dialect they chose on any node. Both answer the
`ivr.voice.DialectMemory` protocol: single-row primary-key reads and upserts, committed at once
(the next call from the number must see it).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import psycopg

from ivr.store.postgres import unreachable


class ClosableDialectMemory(Protocol):
    def get(self, caller: str) -> str | None: ...

    def set(self, caller: str, dialect: str) -> None: ...

    def close(self) -> None: ...


class PostgresDialectMemory:
    """`caller_dialects` in PostgreSQL (created by the store's migration 0003); one connection, locked."""

    __slots__ = ("_conn", "_dsn", "_lock", "_timeout")

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conn: Any = None
        self._timeout = connect_timeout_s
        with self._lock:
            self._connection()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        return self._conn  # type: ignore[no-any-return]

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    cur = self._connection().execute(sql, params)
                    return list(cur.fetchall()) if cur.description else []
                except psycopg.OperationalError:
                    # A restarted server or a dropped connection: reconnect once, then give up loudly.
                    self._conn = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def get(self, caller: str) -> str | None:
        rows = self._run("SELECT dialect FROM caller_dialects WHERE caller = %s", (caller,))
        return str(rows[0][0]) if rows else None

    def set(self, caller: str, dialect: str) -> None:
        self._run(
            "INSERT INTO caller_dialects (caller, dialect) VALUES (%s, %s) ON CONFLICT (caller) "
            "DO UPDATE SET dialect = excluded.dialect, updated_at = now()",
            (caller, dialect),
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_dialect_memory(target: str | Path) -> ClosableDialectMemory:
    """The dialect memory in the database `target` (a SQLite path or a postgresql:// URL), whose
    store has been opened (migrated) first."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            return PostgresDialectMemory(text)
        except psycopg.OperationalError as exc:
            raise unreachable(text, exc) from None
    from ivr.voice.memory import SqliteDialectMemory

    return SqliteDialectMemory(text)


__all__ = ["ClosableDialectMemory", "PostgresDialectMemory", "open_dialect_memory"]
