"""Campaign state that survives a restart: every target, its attempts, and which campaigns are paused.

An attempt is written (status `dialing`, attempt number) and committed BEFORE its INVITE is sent, and
finished after; on start-up `recover` closes attempts a crash left open as `failed` (interrupted), so
an attempt is never dialled twice and no target is lost. SQLite (the engine's own file or a separate
one); its tables are independent of the call-record store's migrations.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


class CampaignStore:
    """One SQLite file; every write commits before returning (a few rows per call attempt)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def add_targets(self, campaign: str, targets: Iterable[Target], not_before: dt.datetime) -> list[TargetState]:
        """Insert new targets (a target id already there is kept as it is); returns the new ones."""
        added: list[TargetState] = []
        with self._tx() as conn:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbound_targets").fetchone()[0]
            for t in targets:
                seq += 1
                cur = conn.execute(
                    "INSERT OR IGNORE INTO outbound_targets (campaign, target_id, number, variables, timezone,"
                    " priority, flow, status, attempts, next_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (campaign, t.target_id, t.number, json.dumps(dict(t.variables), ensure_ascii=False),
                     t.timezone, t.priority, t.flow, Status.PENDING.value, _ts(not_before), seq),
                )
                if cur.rowcount:
                    added.append(TargetState(campaign, t, Status.PENDING, 0, not_before, seq=seq))
        return added

    def targets(self, campaign: str | None = None) -> list[TargetState]:
        sql = ("SELECT campaign, target_id, number, variables, timezone, priority, flow, status, attempts,"
               " next_at, last_result, result_code, seq FROM outbound_targets")
        args: tuple[str, ...] = ()
        if campaign is not None:
            sql += " WHERE campaign = ?"
            args = (campaign,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [
            TargetState(
                row[0], Target(row[1], row[2], json.loads(row[3]), row[4], row[5], row[6]), Status(row[7]),
                row[8], _dt(row[9]), Result(row[10]) if row[10] else None, row[11], row[12],
            )
            for row in rows
        ]

    def begin_attempt(self, state: TargetState, call_id: str, now: dt.datetime) -> None:
        """Committed before the INVITE goes out: the attempt number is used up whatever happens next."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE outbound_targets SET status = ?, attempts = ? WHERE campaign = ? AND target_id = ?",
                (Status.DIALING.value, state.attempts, state.campaign, state.target.target_id),
            )
            conn.execute(
                "INSERT INTO outbound_attempts (campaign, target_id, attempt, call_id, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (state.campaign, state.target.target_id, state.attempts, call_id, _ts(now)),
            )

    def save(self, state: TargetState, now: dt.datetime, attempt_result: Result | None = None) -> None:
        """Write the target's state; with `attempt_result`, also close its current attempt."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE outbound_targets SET status = ?, attempts = ?, next_at = ?, last_result = ?,"
                " result_code = ? WHERE campaign = ? AND target_id = ?",
                (state.status.value, state.attempts, _ts(state.next_at),
                 state.last_result.value if state.last_result else None, state.result_code,
                 state.campaign, state.target.target_id),
            )
            if attempt_result is not None:
                conn.execute(
                    "UPDATE outbound_attempts SET ended_at = ?, result = ?, result_code = ?"
                    " WHERE campaign = ? AND target_id = ? AND attempt = ? AND ended_at IS NULL",
                    (_ts(now), attempt_result.value, state.result_code, state.campaign,
                     state.target.target_id, state.attempts),
                )

    def attempts(self, campaign: str) -> list[AttemptRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT campaign, target_id, attempt, call_id, started_at, ended_at, result, result_code"
                " FROM outbound_attempts WHERE campaign = ? ORDER BY started_at, target_id, attempt",
                (campaign,),
            ).fetchall()
        return [
            AttemptRow(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]) if r[5] else None,
                       Result(r[6]) if r[6] else None, r[7])
            for r in rows
        ]

    def set_paused(self, campaign: str, paused: bool) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO outbound_campaigns (campaign, paused) VALUES (?, ?)"
                " ON CONFLICT (campaign) DO UPDATE SET paused = excluded.paused",
                (campaign, int(paused)),
            )

    def paused(self) -> frozenset[str]:
        with self._lock:
            rows = self._conn.execute("SELECT campaign FROM outbound_campaigns WHERE paused = 1").fetchall()
        return frozenset(r[0] for r in rows)
