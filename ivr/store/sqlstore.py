"""The call-record store over SQL: one class for both backends, which differ only in `SqlBackend`'s hooks.

It is a `JourneySink`: `call_started`, `journey_event`, `call_finished`, `record_survey` and
`log_dispatch` encode their data on the caller's thread and queue it to the single writer thread
(never blocking the event loop), which applies them through `SqlWrites` (ivr.store.sqlwrites). Reads
(`list_calls`, `get_call`, `summary`, `dispatches`) are plain blocking calls on a separate read
connection (`SqlReads`, ivr.store.sqlreads): the web layer runs them with `asyncio.to_thread`.

On open: migrations are applied (`schema_version` + numbered files in `migrations/<dialect>/`), then
calls this node left in progress (engine killed) are marked `interrupted`, their journeys kept. In a
cluster the survivor that inherits a dead node (its ACD lease expired) does the same for it: `node_lost`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import structlog

from ivr.clock import Clock, LoopClock
from ivr.journey import CallRecord, Direction, JourneyEvent
from ivr.store.errors import MigrationError, StoreClosed
from ivr.store.records import (
    CALL_TIMES,
    DISPATCH_COLUMNS,
    EVENT_TIMES,
    CallDetail,
    CallPage,
    CallQuery,
    Committed,
    DispatchEntry,
    check_score,
    dispatch_params,
    event_row,
    record_row,
    ts_text,
    utc,
)
from ivr.store.reports import SERVICE_LEVEL_S, Summary
from ivr.store.retention import PurgeCounts, purge_statements
from ivr.store.sqlreads import SqlReads
from ivr.store.sqlwrites import SqlHooks, SqlWrites
from ivr.store.writer import Op, OpKind, SingleWriter

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

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



class SqlBackend:
    """What differs between SQL databases: connections, placeholder style, parameter encoding,
    migrations, which errors are worth a retry. `SqliteStore` and `PostgresStore` fill these in."""

    dialect: ClassVar[str]

    _dialect_before: ClassVar[str] = "updated_at < ?"
    """SQL true when a caller dialect's `updated_at` is earlier than the `?` parameter."""

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

    def _enc(self, value: object) -> object:
        """A parameter value in the backend's representation (times)."""
        return value


class SqlStore(SqlBackend):
    """Call records, journeys, surveys and the dispatch log in SQL; a `JourneySink` that never blocks."""

    def __init__(self, *, node_id: str, clock: Clock | None, read_only: bool = False, holder: str | None = None
                 ) -> None:
        self.node_id = node_id
        self.holder = holder or node_id
        """The engine process writing: the node itself, or one of its workers (its ACD node id)."""
        self.read_only = read_only
        """Opened for reading only (reports): no migrations, no recovery, no writer; writes raise."""
        self._clock: Clock = clock or LoopClock()
        self._closed = False
        self._writer: SingleWriter | None = None
        hooks = SqlHooks(self._connect, self._connect_reader, self._q, self._enc, self.is_transient)
        self.reads = SqlReads(hooks)
        """The queries (`list_calls`, `get_call`, `summary`, `dispatches` delegate to it)."""
        self.writes = SqlWrites(node_id, hooks, self.holder)
        """What the writer thread applies queued writes through (owns the read-write connection)."""
        self.recovered = 0
        """How many calls left in progress by a previous run were marked `interrupted` on open."""
        if read_only:
            self.schema_version = self._check_schema()
            return
        self.schema_version = self._migrate(self.writes.connection(), load_migrations(self.dialect))
        self.recovered = self.writes.recover()
        self._writer = SingleWriter(self.writes, name=f"ivr-store-writer-{self.dialect}")

    def _check_schema(self) -> int:
        """For a read-only open: the schema must be there and exactly the version this code knows."""
        try:
            version = int(self.reads.read("SELECT COALESCE(MAX(version), 0) FROM schema_version", [])[0][0])
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

    # --- JourneySink: encode now, queue, return -------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        self._submit(OpKind.CALL_STARTED, record.call_id, (self.node_id, self.holder, True, *self._call_row(record)))

    def journey_event(self, event: JourneyEvent) -> None:
        self._submit(OpKind.JOURNEY_EVENT, event.call_id, self._timed(event_row(event), EVENT_TIMES))

    def call_finished(self, record: CallRecord) -> None:
        self._submit(OpKind.CALL_FINISHED, record.call_id, (self.node_id, self.holder, False, *self._call_row(record)))

    def record_survey(self, call_id: str, score: int) -> None:
        """Store a post-call survey score (0..10) that arrives after (or before) the call record."""
        check_score(score)
        self._submit(OpKind.SURVEY, call_id, (call_id, score, self._enc(utc(self._clock.wall()))))

    def log_dispatch(self, entry: DispatchEntry) -> None:
        self._submit(OpKind.DISPATCH, "", self._encoded(dispatch_params(entry), DISPATCH_COLUMNS))

    def node_lost(self, node_id: str) -> None:
        """Another engine node (or worker: `node_id` is its ACD node id, the calls' holder) of the
        cluster died (its ACD lease expired): close the calls it left in
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
        self._closed = True
        self.reads.close()
        self.writes.close()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call_row(self, record: CallRecord) -> tuple[object, ...]:
        return self._timed(record_row(record), CALL_TIMES)

    def _timed(self, row: tuple[object, ...], times: tuple[int, ...]) -> tuple[object, ...]:
        """`row` with the values at `times` in the backend's representation (the only ones `_enc` changes)."""
        values = list(row)
        enc = self._enc
        for i in times:
            values[i] = enc(values[i])
        return tuple(values)

    def _encoded(self, params: Mapping[str, object], columns: Sequence[str]) -> tuple[object, ...]:
        return tuple(self._enc(params[c]) for c in columns)

    def _live_writer(self) -> SingleWriter:
        if self._writer is None:
            raise StoreClosed(f"{self!r} is open read-only: cannot write")
        return self._writer

    def _submit(self, kind: OpKind, call_id: str, params: tuple[object, ...]) -> None:
        self._live_writer().submit(Op(kind, call_id, params))

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

    # --- reads (blocking; run them in a thread from async code): `SqlReads` -----------------------

    def list_calls(self, query: CallQuery) -> CallPage:
        return self.reads.list_calls(query)

    def get_call(self, call_id: str) -> CallDetail | None:
        return self.reads.get_call(call_id)

    def summary(
        self, since: datetime, until: datetime, *, service_level_s: float = SERVICE_LEVEL_S, top_breakpoints: int = 10,
        direction: Direction = Direction.INBOUND,
    ) -> Summary:
        return self.reads.summary(since, until, service_level_s=service_level_s, top_breakpoints=top_breakpoints,
                                  direction=direction)

    def dispatches(self, limit: int = 50) -> list[DispatchEntry]:
        return self.reads.dispatches(limit)


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
