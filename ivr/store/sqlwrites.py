"""The SQL store's writes, applied on the single writer thread: one `Op` queue, one transaction per batch.

`SqlWrites` is the writer's `WriteTarget`: it owns the read-write connection and turns each queued
`Op` into its statements. Closing the calls a node left in progress (`interrupt`: on open for this
node, on `node_lost` for a dead neighbour) runs here too, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ivr.journey import Outcome
from ivr.store.records import (
    CALL_COLUMNS,
    DISPATCH_COLUMNS,
    EVENT_COLUMNS,
    event_from_row,
    record_from_row,
    record_params,
)
from ivr.store.recovery import fill_from_journey
from ivr.store.writer import Op, OpKind

log = structlog.get_logger(__name__)

CALL_COLS = ", ".join(CALL_COLUMNS)
EVENT_COLS = ", ".join(EVENT_COLUMNS)
DISPATCH_COLS = ", ".join(DISPATCH_COLUMNS)
_FIRST_BREAKPOINT = (
    "COALESCE((SELECT j.node FROM journey_events j WHERE j.call_id = calls.call_id AND j.breakpoint = TRUE"
    " ORDER BY j.seq LIMIT 1), '')"
)
STARTED_INTO = f"calls (node_id, holder, in_progress, {CALL_COLS})"
STARTED_CONFLICT = "ON CONFLICT (call_id) DO NOTHING"
FINISHED_CONFLICT = (
    "ON CONFLICT (call_id) DO UPDATE SET in_progress = excluded.in_progress, "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c not in ("call_id", "survey_score"))
    + ", survey_score = COALESCE(excluded.survey_score, calls.survey_score)"
)
FILL_FINISHED_IN = (  # one statement, not one per column: each costs the writer thread a GIL round trip
    "UPDATE calls SET "
    "survey_score = COALESCE(survey_score, (SELECT s.score FROM surveys s WHERE s.call_id = calls.call_id)), "
    f"breakpoint_node = CASE WHEN breakpoint_node <> '' THEN breakpoint_node ELSE {_FIRST_BREAKPOINT} END "
    "WHERE call_id IN ({marks}) AND ("
    "(survey_score IS NULL AND EXISTS (SELECT 1 FROM surveys s WHERE s.call_id = calls.call_id)) OR "
    "(breakpoint_node = '' AND EXISTS "
    "(SELECT 1 FROM journey_events j WHERE j.call_id = calls.call_id AND j.breakpoint = TRUE)))"
)
"""After finished calls' upsert: a survey that came first, and the first breakpoint of its journey when the
record names none (a row is only written when one of them fills something); `{marks}`: the calls' ids."""
EVENT_INTO = f"journey_events ({EVENT_COLS})"
EVENT_CONFLICT = "ON CONFLICT (call_id, seq) DO NOTHING"
UPSERT_SURVEY = (
    "INSERT INTO surveys (call_id, score, at) VALUES (?, ?, ?) "
    "ON CONFLICT (call_id) DO UPDATE SET score = excluded.score, at = excluded.at"
)
SET_SCORE = "UPDATE calls SET survey_score = ? WHERE call_id = ?"
INSERT_DISPATCH = f"INSERT INTO dispatch_log ({DISPATCH_COLS}) VALUES ({', '.join('?' * len(DISPATCH_COLUMNS))})"
RECOVER = (
    "UPDATE calls SET in_progress = ?, outcome = ?, "
    "ended_at = COALESCE("
    "(SELECT MAX(j.at) FROM journey_events j WHERE j.call_id = calls.call_id), started_at), "
    f"breakpoint_node = CASE WHEN breakpoint_node <> '' THEN breakpoint_node ELSE {_FIRST_BREAKPOINT} END "
    "WHERE in_progress = ? AND (holder = ? OR node_id = ?)"
)
_LEARNED = ("dialect", "transcript", "intent", "confidence", "path", "queue")
FILL_LEARNED = f"UPDATE calls SET {', '.join(f'{c} = ?' for c in _LEARNED)} WHERE call_id = ?"
JOURNEY_OF = f"SELECT {EVENT_COLS} FROM journey_events WHERE call_id = ? ORDER BY seq"


@dataclass(slots=True, frozen=True)
class SqlHooks:
    """A backend's hooks as `SqlWrites` and `SqlReads` use them (see `ivr.store.sqlstore.SqlBackend`)."""

    connect: Callable[[], Any]
    """A new read-write connection."""
    connect_reader: Callable[[], Any]
    """A new autocommit connection for reads."""
    q: Callable[[str], str]
    """SQL written with `?` in the backend's placeholder style."""
    enc: Callable[[object], object]
    """A parameter in the backend's representation."""
    is_transient: Callable[[BaseException], bool]
    """True for errors a retry may cure (connection lost, database locked)."""


class SqlWrites:
    """The writer thread's connection and statements (a `WriteTarget`); `node_id` is this engine node,
    `holder` this engine process (the node itself, or one of its workers: `ivr serve --workers`)."""

    def __init__(self, node_id: str, hooks: SqlHooks, holder: str | None = None) -> None:
        self.node_id = node_id
        self.holder = holder or node_id
        self._hooks = hooks
        self._q = hooks.q
        self._inserts = {
            OpKind.CALL_STARTED: _multi_row_insert(STARTED_INTO, len(CALL_COLUMNS) + 3, STARTED_CONFLICT, hooks.q),
            OpKind.JOURNEY_EVENT: _multi_row_insert(EVENT_INTO, len(EVENT_COLUMNS), EVENT_CONFLICT, hooks.q),
        }
        self._upsert_finished = _multi_row_insert(STARTED_INTO, len(CALL_COLUMNS) + 3, FINISHED_CONFLICT, hooks.q)
        self._fill_finished = _Chunked(lambda rows: FILL_FINISHED_IN.format(marks=", ".join("?" * rows)), hooks.q)
        self.conn: Any = None
        """The read-write connection: opened on first use, dropped by `reset` after a failure."""

    def connection(self) -> Any:
        if self.conn is None:
            self.conn = self._hooks.connect()
        return self.conn

    def is_transient(self, exc: BaseException) -> bool:
        return self._hooks.is_transient(exc)

    def write(self, ops: Sequence[Op]) -> None:
        """Apply `ops` in one transaction, in as few statements as their order allows (`_rounds`): each
        statement costs the writer thread a hand-over of the GIL from the event loop's thread and back (one
        per row even with executemany). A round's calls' starts and journey steps (plain inserts no op of
        another call reads) go first as multi-row INSERTs, then its other ops in order, consecutive
        finished calls as one multi-row upsert and one fill (issue 22: ~3.5 statements a call became a few
        a batch)."""
        conn = self.connection()
        try:
            cur = conn.cursor()
            for inserts, others in _rounds(ops):
                for kind, insert in self._inserts.items():
                    insert.run(cur, [op.params for op in inserts if op.kind is kind])
                finished: list[Op] = []
                for op in others:
                    if op.kind is OpKind.CALL_FINISHED:
                        finished.append(op)
                        continue
                    self._finish(cur, finished)
                    finished = []
                    self._apply(cur, op)
                self._finish(cur, finished)
            conn.commit()
        except BaseException:
            if not getattr(conn, "closed", False):
                conn.rollback()
            raise

    def reset(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # the connection is already broken; closing it is best effort
                log.debug("store_close_failed", exc_info=True)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def recover(self) -> int:
        """On open: close the calls this process left in progress (engine killed); how many. The node
        itself (one process, or a node's first worker, which starts alone) closes all of the node's."""
        conn = self.connection()
        count = self.interrupt(conn.cursor(), self.holder, self.node_id if self.holder == self.node_id else "")
        conn.commit()
        if count:
            log.warning("store_calls_interrupted", count=count, node_id=self.node_id)
        return count

    def interrupt(self, cur: Any, holder: str, node_id: str = "") -> int:
        """Close the calls `holder` (or, given, any process of the node `node_id`) left in progress as
        `interrupted`, with what their journeys learned (in the caller's transaction); how many."""
        q = self._q
        cur.execute(q(f"SELECT {CALL_COLS} FROM calls WHERE in_progress = ? AND (holder = ? OR node_id = ?)"),
                    (True, holder, node_id))
        for row in cur.fetchall():
            started = record_from_row(row)
            cur.execute(q(JOURNEY_OF), (started.call_id,))
            learned = record_params(fill_from_journey(started, [event_from_row(e) for e in cur.fetchall()]))
            cur.execute(q(FILL_LEARNED), (*(learned[c] for c in _LEARNED), started.call_id))
        cur.execute(q(RECOVER), (False, Outcome.INTERRUPTED.value, True, holder, node_id))
        return int(cur.rowcount)

    def _finish(self, cur: Any, finished: list[Op]) -> None:
        """Consecutive finished calls: their upserts, then the fill of each (a call at most once a statement:
        PostgreSQL refuses an upsert that touches one row twice)."""
        start = 0
        while start < len(finished):
            seen: set[str] = set()
            end = start
            while end < len(finished) and finished[end].call_id not in seen:
                seen.add(finished[end].call_id)
                end += 1
            chunk = finished[start:end]
            self._upsert_finished.run(cur, [op.params for op in chunk])
            self._fill_finished.run(cur, [(op.call_id,) for op in chunk])
            start = end

    def _apply(self, cur: Any, op: Op) -> None:
        """An op that is neither an insert nor a finished call (`write`)."""
        q = self._q
        if op.kind is OpKind.SURVEY:
            cur.execute(q(UPSERT_SURVEY), op.params)
            cur.execute(q(SET_SCORE), (op.params[1], op.call_id))
        elif op.kind is OpKind.NODE_LOST:
            (node_id,) = op.params
            count = self.interrupt(cur, str(node_id))
            log.warning("store_node_calls_interrupted", count=count, node_id=node_id, by=self.node_id)
        else:
            cur.execute(q(INSERT_DISPATCH), op.params)


def _rounds(ops: Sequence[Op]) -> Iterator[tuple[list[Op], list[Op]]]:
    """`ops` cut into rounds of (inserts, others) such that putting each round's inserts (calls' starts and
    journey steps) before its other ops changes nothing: a round ends after a NODE_LOST (it reads every call
    in progress), and before the start or step of a call whose CALL_FINISHED (it reads the call's journey)
    or SURVEY (it updates the call's row) is already in the round. Any other op reads only its own call's
    rows or none, so moving another call's insert ahead of it is safe."""
    inserts: list[Op] = []
    others: list[Op] = []
    closed: set[str] = set()
    for op in ops:
        kind = op.kind
        if kind is OpKind.CALL_STARTED or kind is OpKind.JOURNEY_EVENT:
            if op.call_id in closed:
                yield inserts, others
                inserts, others, closed = [], [], set()
            inserts.append(op)
            continue
        others.append(op)
        if kind is OpKind.NODE_LOST:
            yield inserts, others
            inserts, others, closed = [], [], set()
        elif kind is OpKind.CALL_FINISHED or kind is OpKind.SURVEY:
            closed.add(op.call_id)
    if inserts or others:
        yield inserts, others


ROWS_PER_INSERT = 64
"""Most rows one INSERT carries (at most 24 parameters a row: far under either backend's limit)."""


class _Chunked:
    """One statement over any number of rows, run as statements of 64, 32 ... 1 rows: few distinct texts, so each
    stays prepared in the connection's statement cache. `sql(n)`: the statement's text for n rows (with `?`)."""

    __slots__ = ("_make", "_q", "_sql")

    def __init__(self, sql: Callable[[int], str], q: Callable[[str], str]) -> None:
        self._make, self._q = sql, q
        self._sql: dict[int, str] = {}

    def run(self, cur: Any, rows: Sequence[tuple[object, ...]]) -> None:
        start = 0
        while start < len(rows):
            size = ROWS_PER_INSERT
            while size > len(rows) - start:
                size //= 2
            chunk = rows[start : start + size]
            cur.execute(self._statement(size), [value for row in chunk for value in row])
            start += size

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:  # bounded: one per power of two up to ROWS_PER_INSERT
            sql = self._sql[rows] = self._q(self._make(rows))
        return sql


def _multi_row_insert(into: str, width: int, conflict: str, q: Callable[[str], str]) -> _Chunked:
    """`INSERT INTO <into> VALUES (row), (row)... <conflict>` for any number of rows."""
    row = f"({', '.join('?' * width)})"
    return _Chunked(lambda rows: f"INSERT INTO {into} VALUES {', '.join([row] * rows)} {conflict}", q)
