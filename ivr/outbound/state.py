"""Campaign state that survives a restart: every target, its attempts, and which campaigns are paused.

An attempt is claimed (status `dialing`, next attempt number) and committed BEFORE its INVITE is sent,
and finished after. The claim is conditional (the target must still be pending at the attempt number
this node last saw), so however many nodes share the state, an attempt is dialled at most once; the
node that finds a claim taken skips the target. Attempts left `dialing` by a node that stopped or died
are closed as failed (interrupted) by the node that dials next, and their targets are due again with
the next attempt number: none is dialled twice, none is lost.

Two backends with the same SQL: SQLite (`outbound_db`, one engine) and PostgreSQL (the engine's
`db: postgresql://...`, shared by a cluster's nodes: `ivr.outbound.pgstate`). With a shared state, one
node at a time leads (dials); the others keep serving the API and take over when the leader goes.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ivr.outbound.model import Result
from ivr.outbound.targets import Target

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound_targets (
    campaign TEXT NOT NULL,
    target_id TEXT NOT NULL,
    number TEXT NOT NULL,
    variables TEXT NOT NULL,
    timezone TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    flow TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    last_result TEXT,
    result_code TEXT,
    seq INTEGER NOT NULL,
    PRIMARY KEY (campaign, target_id)
);
CREATE TABLE IF NOT EXISTS outbound_attempts (
    campaign TEXT NOT NULL,
    target_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    result TEXT,
    result_code TEXT,
    PRIMARY KEY (campaign, target_id, attempt)
);
CREATE TABLE IF NOT EXISTS outbound_campaigns (
    campaign TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);
"""


class Status(enum.Enum):
    PENDING = "pending"
    DIALING = "dialing"
    DONE = "done"


@dataclass(slots=True)
class TargetState:
    campaign: str
    target: Target
    status: Status
    attempts: int
    next_at: dt.datetime
    last_result: Result | None = None
    result_code: str | None = None
    seq: int = 0
    """Order of arrival, the last tie-break."""
    ours: bool = False
    """This node claimed the attempt now dialling (a shared state's other nodes see it `dialing` too)."""


@dataclass(slots=True, frozen=True)
class AttemptRow:
    campaign: str
    target_id: str
    attempt: int
    call_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    result: Result | None
    result_code: str | None


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)




class AttemptTaken(Exception):  # noqa: N818 - a fact, like asyncio's CancelledError
    """Another node claimed this target's attempt first (or finished it): skip it, read it again."""


class Cursor(Protocol):
    """What both drivers' cursors give (sqlite3 and psycopg 3)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executor(Protocol):
    def execute(self, sql: str, args: tuple[object, ...] = ()) -> Cursor: ...


_TARGET_COLS = ("campaign, target_id, number, variables, timezone, priority, flow, status, attempts, next_at,"
                " last_result, result_code, seq")


def _target_state(row: tuple[Any, ...]) -> TargetState:
    return TargetState(
        row[0], Target(row[1], row[2], json.loads(row[3]), row[4], row[5], row[6]), Status(row[7]),
        row[8], _dt(row[9]), Result(row[10]) if row[10] else None, row[11], row[12],
    )


class SqlCampaignState(ABC):
    """The campaign state's reads and writes, in SQL both backends run; a backend gives the connection
    (`_tx`, `_rows`), its placeholder style (`_q`) and whether it leads."""

    shared = False
    """Other engine nodes use the same state: dial only while `lead()` says so, and `refresh` to see
    what they change (targets added through their API, pauses, results)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # -- backend hooks -------------------------------------------------------------------------

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Executor]:
        """One committed transaction (rolled back on an exception)."""

    @abstractmethod
    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read."""

    def _q(self, sql: str) -> str:
        return sql

    def _before_insert(self, conn: Executor) -> None:  # noqa: B027 - optional hook
        """Serialize target inserts across nodes (their `seq` is MAX + 1); nothing for one process."""

    @abstractmethod
    def close(self) -> None: ...

    def lead(self) -> bool:
        """Whether this node may dial now (takes the lead when free); one process always leads."""
        return True

    # -- targets ----------------------------------------------------------------------------------

    def add_targets(self, campaign: str, targets: Iterable[Target], not_before: dt.datetime) -> list[TargetState]:
        """Insert new targets (a target id already there is kept as it is); returns the new ones."""
        added: list[TargetState] = []
        with self._tx() as conn:
            self._before_insert(conn)
            seq = conn.execute(self._q("SELECT COALESCE(MAX(seq), 0) FROM outbound_targets")).fetchone()[0]
            for t in targets:
                seq += 1
                cur = conn.execute(self._q(
                    "INSERT INTO outbound_targets (campaign, target_id, number, variables, timezone, priority,"
                    " flow, status, attempts, next_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
                    " ON CONFLICT (campaign, target_id) DO NOTHING"),
                    (campaign, t.target_id, t.number, json.dumps(dict(t.variables), ensure_ascii=False),
                     t.timezone, t.priority, t.flow, Status.PENDING.value, _ts(not_before), seq),
                )
                if cur.rowcount:
                    added.append(TargetState(campaign, t, Status.PENDING, 0, not_before, seq=seq))
        return added

    def targets(self, campaign: str | None = None, *, after_seq: int = 0) -> list[TargetState]:
        """Targets in arrival order (of one campaign; only those that arrived after `after_seq`)."""
        sql = f"SELECT {_TARGET_COLS} FROM outbound_targets WHERE seq > ?"
        args: tuple[object, ...] = (after_seq,)
        if campaign is not None:
            sql += " AND campaign = ?"
            args = (after_seq, campaign)
        return [_target_state(row) for row in self._rows(self._q(sql + " ORDER BY seq"), args)]

    def target(self, campaign: str, target_id: str) -> TargetState | None:
        rows = self._rows(self._q(f"SELECT {_TARGET_COLS} FROM outbound_targets WHERE campaign = ? AND target_id = ?"),
                          (campaign, target_id))
        return _target_state(rows[0]) if rows else None

    # -- attempts -----------------------------------------------------------------------------------

    def begin_attempt(self, state: TargetState, call_id: str, now: dt.datetime) -> None:
        """Claim attempt `state.attempts` (already counted up) and commit it before the INVITE goes out:
        the attempt number is used up whatever happens next. Raises `AttemptTaken` when the target is
        no longer pending at the attempt before (another node claimed or finished it)."""
        with self._tx() as conn:
            cur = conn.execute(self._q(
                "UPDATE outbound_targets SET status = ?, attempts = ? WHERE campaign = ? AND target_id = ?"
                " AND status = ? AND attempts = ?"),
                (Status.DIALING.value, state.attempts, state.campaign, state.target.target_id,
                 Status.PENDING.value, state.attempts - 1),
            )
            if cur.rowcount != 1:
                raise AttemptTaken(f"attempt {state.attempts} of {state.campaign}/{state.target.target_id}")
            conn.execute(self._q(
                "INSERT INTO outbound_attempts (campaign, target_id, attempt, call_id, started_at)"
                " VALUES (?, ?, ?, ?, ?)"),
                (state.campaign, state.target.target_id, state.attempts, call_id, _ts(now)),
            )

    def save(self, state: TargetState, now: dt.datetime, attempt_result: Result | None = None) -> None:
        """Write the target's state; with `attempt_result`, also close its current attempt. Only while
        the stored target is at the same attempt (a node that lost the lead cannot undo a newer one)."""
        with self._tx() as conn:
            conn.execute(self._q(
                "UPDATE outbound_targets SET status = ?, attempts = ?, next_at = ?, last_result = ?,"
                " result_code = ? WHERE campaign = ? AND target_id = ? AND attempts = ?"),
                (state.status.value, state.attempts, _ts(state.next_at),
                 state.last_result.value if state.last_result else None, state.result_code,
                 state.campaign, state.target.target_id, state.attempts),
            )
            if attempt_result is not None:
                conn.execute(self._q(
                    "UPDATE outbound_attempts SET ended_at = ?, result = ?, result_code = ?"
                    " WHERE campaign = ? AND target_id = ? AND attempt = ? AND ended_at IS NULL"),
                    (_ts(now), attempt_result.value, state.result_code, state.campaign,
                     state.target.target_id, state.attempts),
                )

    def attempts(self, campaign: str) -> list[AttemptRow]:
        rows = self._rows(self._q(
            "SELECT campaign, target_id, attempt, call_id, started_at, ended_at, result, result_code"
            " FROM outbound_attempts WHERE campaign = ? ORDER BY started_at, target_id, attempt"), (campaign,))
        return [
            AttemptRow(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]) if r[5] else None,
                       Result(r[6]) if r[6] else None, r[7])
            for r in rows
        ]

    # -- pauses ---------------------------------------------------------------------------------------

    def set_paused(self, campaign: str, paused: bool) -> None:
        with self._tx() as conn:
            conn.execute(self._q(
                "INSERT INTO outbound_campaigns (campaign, paused) VALUES (?, ?)"
                " ON CONFLICT (campaign) DO UPDATE SET paused = excluded.paused"),
                (campaign, int(paused)),
            )

    def paused(self) -> frozenset[str]:
        rows = self._rows(self._q("SELECT campaign FROM outbound_campaigns WHERE paused = 1"))
        return frozenset(r[0] for r in rows)


class CampaignStore(SqlCampaignState):
    """One SQLite file (`outbound_db`) for one engine; every write commits before returning."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[Executor]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql, args).fetchall()]
