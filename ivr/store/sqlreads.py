"""The SQL store's reads for the API and reports: plain blocking calls on their own autocommit
connection (the web layer runs them with `asyncio.to_thread`), retried once on a transient error."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from ivr.journey import Direction
from ivr.store.errors import StoreClosed
from ivr.store.records import (
    CallDetail,
    CallPage,
    CallQuery,
    DispatchEntry,
    decode_cursor,
    dispatch_from_row,
    encode_cursor,
    event_from_row,
    record_from_row,
    utc,
)
from ivr.store.reports import BREAKPOINTS_SQL, MIX_SQL, SERVICE_LEVEL_S, SUMMARY_SQL, Summary, summary_from_rows
from ivr.store.sqlwrites import CALL_COLS, DISPATCH_COLS, JOURNEY_OF, SqlHooks

log = structlog.get_logger(__name__)


class SqlReads:
    """Queries over calls, journeys and the dispatch log, on the backend's autocommit read connection."""

    def __init__(self, hooks: SqlHooks) -> None:
        self._hooks = hooks
        self._q = hooks.q
        self._enc = hooks.enc
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closed = False

    def list_calls(self, query: CallQuery) -> CallPage:
        """One page of calls matching `query`, newest first."""
        where: list[str] = []
        args: list[object] = []
        for column, value in (
            ("intent", query.intent),
            ("queue", query.queue),
            ("dialect", query.dialect),
            ("caller", query.caller),
            ("outcome", None if query.outcome is None else query.outcome.value),
            ("in_progress", query.in_progress),
            ("node_id", query.node_id),
            ("direction", None if query.direction is None else query.direction.value),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            where.append("started_at >= ?")
            args.append(self._enc(utc(query.since)))
        if query.until is not None:
            where.append("started_at < ?")
            args.append(self._enc(utc(query.until)))
        offset = query.offset
        if query.cursor is not None:
            started, call_id = decode_cursor(query.cursor)
            where.append("(started_at < ? OR (started_at = ? AND call_id < ?))")
            args += [self._enc(started), self._enc(started), call_id]
            offset = 0
        sql = f"SELECT {CALL_COLS}, node_id FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?"
        rows = self.read(sql, [*args, query.limit + 1, offset])
        page = rows[: query.limit]
        records = [record_from_row(row[:-1]) for row in page]
        more = len(rows) > query.limit
        cursor = encode_cursor(records[-1].started_at, records[-1].call_id) if more and records else None
        return CallPage(records, cursor, {r.call_id: str(row[-1]) for r, row in zip(records, page, strict=True)})

    def get_call(self, call_id: str) -> CallDetail | None:
        """The call's record and its journey in order, or None if unknown."""
        rows = self.read(f"SELECT {CALL_COLS}, in_progress FROM calls WHERE call_id = ?", [call_id])
        if not rows:
            return None
        return CallDetail(
            record=record_from_row(rows[0][:-1]),
            journey=[event_from_row(e) for e in self.read(JOURNEY_OF, [call_id])],
            in_progress=bool(rows[0][-1]),
        )

    def summary(
        self, since: datetime, until: datetime, *, service_level_s: float = SERVICE_LEVEL_S, top_breakpoints: int = 10,
        direction: Direction = Direction.INBOUND,
    ) -> Summary:
        """Summary figures for calls started in `[since, until)` (see `ivr.store.reports`): the hotline's
        own calls by default; a campaign's attempts are counted by the campaign (`/api/campaigns`)."""
        window = [direction.value, self._enc(utc(since)), self._enc(utc(until))]
        totals = self.read(SUMMARY_SQL, [service_level_s, *window])[0]
        return summary_from_rows(
            utc(since),
            utc(until),
            tuple(totals),
            self.read(MIX_SQL, window),
            [tuple(r) for r in self.read(BREAKPOINTS_SQL, [*window, top_breakpoints])],
            service_level_s,
        )

    def dispatches(self, limit: int = 50) -> list[DispatchEntry]:
        """The latest dispatch log entries (starts, ends, expiries, night hours, refusals), newest first."""
        rows = self.read(f"SELECT {DISPATCH_COLS} FROM dispatch_log ORDER BY id DESC LIMIT ?", [limit])
        return [dispatch_from_row(r) for r in rows]

    def read(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        """Rows of one query (SQL written with `?`); reconnects and retries once on a transient error."""
        with self._lock:
            for attempt in (1, 2):
                if self._closed:
                    raise StoreClosed("store is closed: cannot read")
                if self._conn is None:
                    self._conn = self._hooks.connect_reader()
                try:
                    cur = self._conn.cursor()
                    cur.execute(self._q(sql), tuple(args))
                    return [tuple(row) for row in cur.fetchall()]
                except Exception as exc:
                    if attempt == 2 or not self._hooks.is_transient(exc):
                        raise
                    log.warning("store_read_retry", exc_info=True)
                    self._conn.close()
                    self._conn = None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Refuse further reads and close the connection (idempotent)."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
