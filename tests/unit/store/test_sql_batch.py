"""One writer batch gives the rows that the same writes one at a time give (issue 22: a call's start and
its journey steps are held back and inserted several rows per statement)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from store_contract import T0, sample_calls

from ivr.clock import FakeClock
from ivr.journey import JourneyEvent
from ivr.store import SqliteStore
from ivr.store.records import EVENT_TIMES, event_row
from ivr.store.writer import Op, OpKind


def interleaved_ops(store: SqliteStore) -> list[Op]:
    """The sample day's writes as the writer thread would see them with calls overlapping: each call's
    start, a long journey (past one INSERT's 64 rows), a survey before one call's record and its finish."""
    ops: list[Op] = []
    calls = sample_calls()[:12]
    for i, call in enumerate(calls):
        started = replace(call.record, outcome=None, ended_at=None, survey_score=None)
        ops.append(Op(OpKind.CALL_STARTED, started.call_id, (store.node_id, store.holder, True,
                                                             *store._call_row(started))))
        steps = call.events + [
            JourneyEvent(call.record.call_id, len(call.events) + n, T0 + timedelta(seconds=n), "loop", "node_entered")
            for n in range(70 if i == 3 else 0)
        ]
        ops += [Op(OpKind.JOURNEY_EVENT, e.call_id, store._timed(event_row(e), EVENT_TIMES)) for e in steps]
        if i == 5:  # the caller's survey reaches the store before the call's record
            ops.append(Op(OpKind.SURVEY, call.record.call_id, (call.record.call_id, 9, "2026-01-05T10:00:00+00:00")))
        if i >= 2 and calls[i - 2].finished:  # calls finish while later ones are going on
            done = calls[i - 2].record
            if i - 2 == 1:  # a record that names no breakpoint though its journey has one: filled from it
                done = replace(done, breakpoint_node="")
            ops.append(Op(OpKind.CALL_FINISHED, done.call_id, (store.node_id, store.holder, False,
                                                               *store._call_row(done))))
    return ops


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("calls", "journey_events", "surveys")}
    finally:
        db.close()


def test_one_batch_writes_what_the_same_ops_one_by_one_write(tmp_path: Path) -> None:
    stores = [SqliteStore(tmp_path / f"{name}.db", clock=FakeClock()) for name in ("batch", "single")]
    batch, single = stores
    ops = interleaved_ops(batch)
    assert len(ops) > 100
    batch.writes.write(ops)
    for op in ops:
        single.writes.write([op])
    for store in stores:
        store.close()
    written = rows(tmp_path / "batch.db")
    assert written == rows(tmp_path / "single.db")
    assert len(written["journey_events"]) == sum(1 for op in ops if op.kind is OpKind.JOURNEY_EVENT)
    db = sqlite3.connect(tmp_path / "batch.db")
    try:
        first_breakpoint = next(e.node for e in sample_calls()[1].events if e.breakpoint)
        assert db.execute("SELECT breakpoint_node FROM calls WHERE call_id = 'call-001'").fetchone() == (
            first_breakpoint,)
        assert db.execute("SELECT survey_score FROM calls WHERE call_id = 'call-005'").fetchone() == (9,)
        assert db.execute("SELECT COUNT(*) FROM calls WHERE in_progress").fetchone() == (2,)  # the last two
    finally:
        db.close()
