"""Caller dialect memory kept in the engine's database, wherever `db` points.

A SQLite `db` uses `ivr.voice.SqliteDialectMemory` on the same file (the store's migrations create the
same `caller_dialects` table); a `postgresql://` URL uses `PostgresDialectMemory`, so every node of a
cluster greets a returning caller in the dialect they chose on any node. Both answer the
`ivr.voice.DialectMemory` protocol: single-row primary-key reads and upserts, committed at once
(the next call from the number must see it). Those calls block: the engine reaches them through
`open_dialect_worker`, which runs them on a thread of their own (`ivr.store.dialectworker`), never on the
event loop.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import structlog

from ivr.clock import Clock
from ivr.store.dialectworker import GATHER_S, ClosableDialectMemory, DialectWorker, DialectWriter
from ivr.store.postgres import unreachable

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 5.0
"""After PostgreSQL failed twice in a row, lookups answer "nothing remembered" at once for this long: a caller
is served without their remembered dialect rather than dropped, and the event loop is not held by a connect
timeout on every new call while the database is away."""


class PostgresDialectMemory:
    """`caller_dialects` in PostgreSQL (created by the store's migration 0003); one connection, locked."""

    __slots__ = ("_conn", "_down_until", "_dsn", "_lock", "_timeout")

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conn: Any = None
        self._timeout = connect_timeout_s
        self._down_until = 0.0
        with self._lock:
            self._connection()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        return self._conn  # type: ignore[no-any-return]

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            if time.monotonic() < self._down_until:
                raise psycopg.OperationalError("PostgreSQL was unreachable moments ago; not retried yet")
            for attempt in (1, 2):
                try:
                    cur = self._connection().execute(sql, params)
                    return list(cur.fetchall()) if cur.description else []
                except psycopg.OperationalError:
                    # A restarted server or a dropped connection: reconnect once, then rest a while.
                    self._conn = None
                    if attempt == 2:
                        self._down_until = time.monotonic() + RETRY_AFTER_S
                        raise
        raise AssertionError("unreachable")

    def get(self, caller: str) -> str | None:
        """The caller's remembered dialect; None when there is none or the database cannot say now."""
        try:
            rows = self._run("SELECT dialect FROM caller_dialects WHERE caller = %s", (caller,))
        except psycopg.Error as exc:
            log.warning("dialect_memory_unavailable", operation="get", error=str(exc))
            return None
        return str(rows[0][0]) if rows else None

    def set(self, caller: str, dialect: str) -> None:
        """Remember the caller's dialect; lost (with a warning) while the database is away: it is a hint."""
        try:
            self._run(
                "INSERT INTO caller_dialects (caller, dialect) VALUES (%s, %s) ON CONFLICT (caller) "
                "DO UPDATE SET dialect = excluded.dialect, updated_at = now()",
                (caller, dialect),
            )
        except psycopg.Error as exc:
            log.warning("dialect_memory_unavailable", operation="set", error=str(exc))

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


def open_dialect_worker(target: str | Path, *, clock: Clock | None = None,
                        gather_s: float = GATHER_S) -> DialectWorker:
    """`open_dialect_memory(target)` opened and run on a worker thread: what the event loop uses (the
    lookups asked within `gather_s` go to the thread together)."""
    return DialectWorker(lambda: open_dialect_memory(target), clock=clock, gather_s=gather_s)


__all__ = ["ClosableDialectMemory", "DialectWorker", "DialectWriter", "PostgresDialectMemory",
           "open_dialect_memory", "open_dialect_worker"]
