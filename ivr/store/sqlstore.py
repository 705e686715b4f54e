"""The call-record store over SQL: one class for both backends, which differ only in the hooks at the end.

It is a `JourneySink`: `call_started`, `journey_event`, `call_finished`, `record_survey` and
`log_dispatch` encode their data on the caller's thread and queue it to the single writer thread
(never blocking the event loop). Reads (`list_calls`, `get_call`, `summary`, `dispatches`) are plain
blocking calls on a separate read connection: the web layer runs them with `asyncio.to_thread`.

On open: migrations are applied (`schema_version` + numbered files in `migrations/<dialect>/`), then
calls this node left in progress (engine killed) are marked `interrupted`, their journeys kept. In a
cluster the survivor that inherits a dead node (its ACD lease expired) does the same for it: `node_lost`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import structlog

from ivr.clock import Clock, LoopClock
from ivr.journey import CallRecord, JourneyEvent, Outcome
from ivr.store.errors import MigrationError, StoreClosed
from ivr.store.records import (
    CALL_COLUMNS,
    DISPATCH_COLUMNS,
    EVENT_COLUMNS,
    CallDetail,
    CallPage,
    CallQuery,
    Committed,
    DispatchEntry,
    check_score,
    decode_cursor,
    dispatch_from_row,
    dispatch_params,
    encode_cursor,
    event_from_row,
    event_params,
    record_from_row,
    record_params,
    ts_text,
    utc,
)
from ivr.store.recovery import fill_from_journey
from ivr.store.reports import (
    BREAKPOINTS_SQL,
    MIX_SQL,
    SERVICE_LEVEL_S,
    SUMMARY_SQL,
    Summary,
    summary_from_rows,
)
from ivr.store.retention import PurgeCounts, purge_statements
from ivr.store.writer import Op, OpKind, SingleWriter

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_COLS = ", ".join(CALL_COLUMNS)
_CALL_MARKS = ", ".join("?" * (len(CALL_COLUMNS) + 2))
_FIRST_BREAKPOINT = (
    "COALESCE((SELECT j.node FROM journey_events j WHERE j.call_id = calls.call_id AND j.breakpoint = TRUE"
    " ORDER BY j.seq LIMIT 1), '')"
)
INSERT_STARTED = (
    f"INSERT INTO calls (node_id, in_progress, {_COLS}) VALUES ({_CALL_MARKS}) "
    "ON CONFLICT (call_id) DO NOTHING"
)
UPSERT_FINISHED = (
    f"INSERT INTO calls (node_id, in_progress, {_COLS}) VALUES ({_CALL_MARKS}) ON CONFLICT (call_id) "
    "DO UPDATE SET in_progress = excluded.in_progress, "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c not in ("call_id", "survey_score"))
    + ", survey_score = COALESCE(excluded.survey_score, calls.survey_score)"
)
FILL_SURVEY = (
    "UPDATE calls SET survey_score = (SELECT s.score FROM surveys s WHERE s.call_id = calls.call_id) "
    "WHERE call_id = ? AND survey_score IS NULL "
    "AND EXISTS (SELECT 1 FROM surveys s WHERE s.call_id = calls.call_id)"
)
FILL_BREAKPOINT = (
    f"UPDATE calls SET breakpoint_node = {_FIRST_BREAKPOINT} WHERE call_id = ? AND breakpoint_node = ''"
)
INSERT_EVENT = (
    f"INSERT INTO journey_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "
    "ON CONFLICT (call_id, seq) DO NOTHING"
)
UPSERT_SURVEY = (
    "INSERT INTO surveys (call_id, score, at) VALUES (?, ?, ?) "
    "ON CONFLICT (call_id) DO UPDATE SET score = excluded.score, at = excluded.at"
)
SET_SCORE = "UPDATE calls SET survey_score = ? WHERE call_id = ?"
_DISPATCH_COLS = ", ".join(DISPATCH_COLUMNS)
INSERT_DISPATCH = f"INSERT INTO dispatch_log ({_DISPATCH_COLS}) VALUES ({', '.join('?' * len(DISPATCH_COLUMNS))})"
RECOVER = (
    "UPDATE calls SET in_progress = ?, outcome = ?, "
    "ended_at = COALESCE("
    "(SELECT MAX(j.at) FROM journey_events j WHERE j.call_id = calls.call_id), started_at), "
    f"breakpoint_node = CASE WHEN breakpoint_node <> '' THEN breakpoint_node ELSE {_FIRST_BREAKPOINT} END "
    "WHERE in_progress = ? AND node_id = ?"
)
_LEARNED = ("dialect", "transcript", "intent", "confidence", "path", "queue")
FILL_LEARNED = f"UPDATE calls SET {', '.join(f'{c} = ?' for c in _LEARNED)} WHERE call_id = ?"
CREATE_SCHEMA_VERSION = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(slots=True, frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The numbered SQL files for `dialect`, in order; gaps and bad names are errors naming the file."""
    folder = MIGRATIONS_DIR / dialect
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_snake_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path, path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.path}: expected migration number {expected:04d}")
    return found


class SqlStore:
    """Call records, journeys, surveys and the dispatch log in SQL; a `JourneySink` that never blocks."""

    dialect: ClassVar[str]

    def __init__(self, *, node_id: str, clock: Clock | None, read_only: bool = False) -> None:
        self.node_id = node_id
        self.read_only = read_only
        """Opened for reading only (reports): no migrations, no recovery, no writer; writes raise."""
        self._clock: Clock = clock or LoopClock()
        self._read_lock = threading.Lock()
        self._rconn: Any = None
        self._closed = False
        self._writer: SingleWriter | None = None
        self._wconn: Any = None
        self.recovered = 0
        """How many calls left in progress by a previous run were marked `interrupted` on open."""
        if read_only:
            self.schema_version = self._check_schema()
            return
        self._wconn = self._connect()
        self.schema_version = self._migrate(self._wconn, load_migrations(self.dialect))
        self.recovered = self._recover()
        self._writer = SingleWriter(self, name=f"ivr-store-writer-{self.dialect}")

    def _check_schema(self) -> int:
        """For a read-only open: the schema must be there and exactly the version this code knows."""
        try:
            version = int(self._read("SELECT COALESCE(MAX(version), 0) FROM schema_version", [])[0][0])
        except StoreClosed:
            raise
        except Exception as exc:
            if self.is_transient(exc):  # unreachable, not "not ours": open_store says which database
                raise
            raise MigrationError(f"{self!r}: not a call-record database ({exc})") from exc
        migrations = load_migrations(self.dialect)
        if check_version(version, migrations, repr(self)):
            raise MigrationError(
                f"{self!r}: database schema version {version} is older than this engine's "
                f"({migrations[-1].version}); start the engine once to migrate it"
            )
        return version

    def _live_writer(self) -> SingleWriter:
        if self._writer is None:
            raise StoreClosed(f"{self!r} is open read-only: cannot write")
        return self._writer

    # --- JourneySink: encode now, queue, return -------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        self._submit(OpKind.CALL_STARTED, record.call_id, (self.node_id, True, *self._call_row(record)))

    def journey_event(self, event: JourneyEvent) -> None:
        params = event_params(event)
        self._submit(OpKind.JOURNEY_EVENT, event.call_id, tuple(self._enc(params[c]) for c in EVENT_COLUMNS))

    def call_finished(self, record: CallRecord) -> None:
        self._submit(OpKind.CALL_FINISHED, record.call_id, (self.node_id, False, *self._call_row(record)))

    def record_survey(self, call_id: str, score: int) -> None:
        """Store a post-call survey score (0..10) that arrives after (or before) the call record."""
        check_score(score)
        self._submit(OpKind.SURVEY, call_id, (call_id, score, self._enc(utc(self._clock.wall()))))

    def log_dispatch(self, entry: DispatchEntry) -> None:
        params = dispatch_params(entry)
        self._submit(OpKind.DISPATCH, "", tuple(self._enc(params[c]) for c in DISPATCH_COLUMNS))

    def node_lost(self, node_id: str) -> None:
        """Another engine node of the cluster died (its ACD lease expired): close the calls it left in
        progress as `interrupted`, as it would itself on restart. Queued like every write; idempotent,
        and harmless if the node was alive after all (its own `call_finished` overwrites the outcome)."""
        self._submit(OpKind.NODE_LOST, "", (node_id,))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until everything queued so far is committed; False if `timeout_s` passed first."""
        return True if self._writer is None else self._writer.flush(timeout_s)

    def on_commit(self, listener: Callable[[Committed], None]) -> Callable[[], None]:
        """Call `listener` on the writer thread after each commit; returns an unsubscribe function."""
        if self._writer is None:
            return lambda: None
        return self._writer.on_commit(listener)

    @property
    def backlog(self) -> int:
        return 0 if self._writer is None else self._writer.backlog

    @property
    def failed_writes(self) -> int:
        return 0 if self._writer is None else self._writer.failed_ops

    def close(self) -> None:
        """Commit what is queued and close the connections (idempotent)."""
        if self._closed:
            return
        if self._writer is not None:
            self._writer.close()
        with self._read_lock:
            self._closed = True
            for conn in (self._rconn, self._wconn):
                if conn is not None:
                    conn.close()
            self._rconn = self._wconn = None

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, kind: OpKind, call_id: str, params: tuple[object, ...]) -> None:
        self._live_writer().submit(Op(kind, call_id, params))

    def _call_row(self, record: CallRecord) -> list[object]:
        params = record_params(record)
        return [self._enc(params[c]) for c in CALL_COLUMNS]

    # --- WriteTarget (called on the writer thread) ----------------------------------------------

    def write(self, ops: Sequence[Op]) -> None:
        if self._wconn is None:
            self._wconn = self._connect()
        conn = self._wconn
        try:
            cur = conn.cursor()
            for op in ops:
                self._apply(cur, op)
            conn.commit()
        except BaseException:
            if not getattr(conn, "closed", False):
                conn.rollback()
            raise

    def reset(self) -> None:
        conn, self._wconn = self._wconn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # the connection is already broken; closing it is best effort
                log.debug("store_close_failed", exc_info=True)

    def _apply(self, cur: Any, op: Op) -> None:
        q = self._q
        if op.kind is OpKind.CALL_STARTED:
            cur.execute(q(INSERT_STARTED), op.params)
        elif op.kind is OpKind.JOURNEY_EVENT:
            cur.execute(q(INSERT_EVENT), op.params)
        elif op.kind is OpKind.CALL_FINISHED:
            cur.execute(q(UPSERT_FINISHED), op.params)
            cur.execute(q(FILL_SURVEY), (op.call_id,))
            cur.execute(q(FILL_BREAKPOINT), (op.call_id,))
        elif op.kind is OpKind.SURVEY:
            cur.execute(q(UPSERT_SURVEY), op.params)
            cur.execute(q(SET_SCORE), (op.params[1], op.call_id))
        elif op.kind is OpKind.NODE_LOST:
            (node_id,) = op.params
            count = self._interrupt(cur, str(node_id))
            log.warning("store_node_calls_interrupted", count=count, node_id=node_id, by=self.node_id)
        else:
            cur.execute(q(INSERT_DISPATCH), op.params)

    def _recover(self) -> int:
        conn = self._wconn
        count = self._interrupt(conn.cursor(), self.node_id)
        conn.commit()
        if count:
            log.warning("store_calls_interrupted", count=count, node_id=self.node_id)
        return count

    def _interrupt(self, cur: Any, node_id: str) -> int:
        """Close the calls `node_id` left in progress as `interrupted`, with what their journeys learned
        (in the caller's transaction); how many."""
        cur.execute(self._q(f"SELECT {_COLS} FROM calls WHERE in_progress = ? AND node_id = ?"), (True, node_id))
        for row in cur.fetchall():
            started = record_from_row(row)
            cur.execute(
                self._q(f"SELECT {', '.join(EVENT_COLUMNS)} FROM journey_events WHERE call_id = ? ORDER BY seq"),
                (started.call_id,),
            )
            learned = record_params(fill_from_journey(started, [event_from_row(e) for e in cur.fetchall()]))
            cur.execute(self._q(FILL_LEARNED), (*(learned[c] for c in _LEARNED), started.call_id))
        cur.execute(self._q(RECOVER), (False, Outcome.INTERRUPTED.value, True, node_id))
        return int(cur.rowcount)

    # --- retention (blocking) -------------------------------------------------------------------

    def purge(self, before: datetime) -> PurgeCounts:
        """Delete finished calls started before `before` with their journeys and surveys, and caller
        dialects not updated since; one transaction on its own connection (the writer keeps going)."""
        self._live_writer()
        self.flush()
        deleted: dict[str, int] = {}
        conn = self._connect()
        try:
            cur = conn.cursor()
            for kind, sql in purge_statements(self._dialect_before):
                cur.execute(self._q(sql), (self._enc(utc(before)),))
                deleted[kind] = max(0, int(cur.rowcount))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        log.info("store_purged", before=ts_text(before), **deleted)
        return PurgeCounts(**deleted)

    # --- reads (blocking; run them in a thread from async code) ---------------------------------

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
        sql = f"SELECT {_COLS}, node_id FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?"
        rows = self._read(sql, [*args, query.limit + 1, offset])
        page = rows[: query.limit]
        records = [record_from_row(row[:-1]) for row in page]
        more = len(rows) > query.limit
        cursor = encode_cursor(records[-1].started_at, records[-1].call_id) if more and records else None
        return CallPage(records, cursor, {r.call_id: str(row[-1]) for r, row in zip(records, page, strict=True)})

    def get_call(self, call_id: str) -> CallDetail | None:
        """The call's record and its journey in order, or None if unknown."""
        rows = self._read(f"SELECT {_COLS}, in_progress FROM calls WHERE call_id = ?", [call_id])
        if not rows:
            return None
        events = self._read(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM journey_events WHERE call_id = ? ORDER BY seq", [call_id]
        )
        return CallDetail(
            record=record_from_row(rows[0][:-1]),
            journey=[event_from_row(e) for e in events],
            in_progress=bool(rows[0][-1]),
        )

    def summary(
        self,
        since: datetime,
        until: datetime,
        *,
        service_level_s: float = SERVICE_LEVEL_S,
        top_breakpoints: int = 10,
    ) -> Summary:
        """Summary figures for calls started in `[since, until)` (see `ivr.store.reports`)."""
        window = [self._enc(utc(since)), self._enc(utc(until))]
        totals = self._read(SUMMARY_SQL, [service_level_s, *window])[0]
        return summary_from_rows(
            utc(since),
            utc(until),
            tuple(totals),
            self._read(MIX_SQL, window),
            [tuple(r) for r in self._read(BREAKPOINTS_SQL, [*window, top_breakpoints])],
            service_level_s,
        )

    def dispatches(self, limit: int = 50) -> list[DispatchEntry]:
        """The latest dispatch log entries (starts, ends, expiries, night hours, refusals), newest first."""
        rows = self._read(f"SELECT {_DISPATCH_COLS} FROM dispatch_log ORDER BY id DESC LIMIT ?", [limit])
        return [dispatch_from_row(r) for r in rows]

    def _read(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._read_lock:
            for attempt in (1, 2):
                if self._closed:
                    raise StoreClosed("store is closed: cannot read")
                if self._rconn is None:
                    self._rconn = self._connect_reader()
                try:
                    cur = self._rconn.cursor()
                    cur.execute(self._q(sql), tuple(args))
                    return [tuple(row) for row in cur.fetchall()]
                except Exception as exc:
                    if attempt == 2 or not self.is_transient(exc):
                        raise
                    log.warning("store_read_retry", exc_info=True)
                    self._rconn.close()
                    self._rconn = None
        raise AssertionError("unreachable")

    # --- backend hooks --------------------------------------------------------------------------

    def _connect(self) -> Any:
        """A new read-write connection (the writer's)."""
        raise NotImplementedError

    def _connect_reader(self) -> Any:
        """A new connection for reads, in autocommit mode."""
        raise NotImplementedError

    def _migrate(self, conn: Any, migrations: list[Migration]) -> int:
        """Apply pending migrations; return the schema version now in force."""
        raise NotImplementedError

    def is_transient(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        """SQL text in the backend's placeholder style (written with `?`)."""
        return sql

    _dialect_before: ClassVar[str] = "updated_at < ?"
    """SQL true when a caller dialect's `updated_at` is earlier than the `?` parameter."""

    def _enc(self, value: object) -> object:
        """A parameter value in the backend's representation (times)."""
        return value


def check_version(current: int, migrations: list[Migration], where: str) -> list[Migration]:
    """The migrations still to apply; an error if the database is newer than this code."""
    newest = migrations[-1].version if migrations else 0
    if current > newest:
        raise MigrationError(
            f"{where}: database schema version {current} is newer than this engine knows ({newest})"
        )
    return [m for m in migrations if m.version > current]


def version_row(migration: Migration, at: datetime) -> tuple[int, str, str]:
    return (migration.version, migration.name, ts_text(at))
