"""One writer batch gives the rows that the same writes one at a time give (issue 22: a call's start and
its journey steps are held back and inserted several rows per statement)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from store_contract import T0, sample_calls

from ivr.clock import FakeClock
from ivr.journey import CallRecord, JourneyEvent, Outcome
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


Rows = dict[str, list[tuple[object, ...]]]
"""Each table's rows."""


def rows(path: Path) -> Rows:
    db = sqlite3.connect(path)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("calls", "journey_events", "surveys")}
    finally:
        db.close()


def batch_and_one_by_one(tmp_path: Path, make_ops: Callable[[SqliteStore], list[Op]]) -> tuple[list[Op], Rows]:
    """`make_ops` written as one batch into batch.db and one op at a time into single.db: (the ops, batch.db's rows),
    asserting the two databases hold the same rows."""
    stores = [SqliteStore(tmp_path / f"{name}.db", clock=FakeClock()) for name in ("batch", "single")]
    batch, single = stores
    ops = make_ops(batch)
    batch.writes.write(ops)
    for op in ops:
        single.writes.write([op])
    for store in stores:
        store.close()
    written = rows(tmp_path / "batch.db")
    assert written == rows(tmp_path / "single.db")
    return ops, written


def test_one_batch_writes_what_the_same_ops_one_by_one_write(tmp_path: Path) -> None:
    ops, written = batch_and_one_by_one(tmp_path, interleaved_ops)
    assert len(ops) > 100
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


def _finished_op(store: SqliteStore, record: CallRecord) -> Op:
    return Op(OpKind.CALL_FINISHED, record.call_id, (store.node_id, store.holder, False, *store._call_row(record)))


def _started_op(store: SqliteStore, record: CallRecord) -> Op:
    started = replace(record, outcome=None, ended_at=None, survey_score=None)
    return Op(OpKind.CALL_STARTED, record.call_id, (store.node_id, store.holder, True, *store._call_row(started)))


def _step_op(store: SqliteStore, event: JourneyEvent) -> Op:
    return Op(OpKind.JOURNEY_EVENT, event.call_id, store._timed(event_row(event), EVENT_TIMES))


def awkward_ops(store: SqliteStore) -> list[Op]:
    """Orders a batch may hold that moving its inserts ahead would get wrong: a breakpoint step after its call's
    finish (the finish's fill must not see it), a call finished twice, a start after its call's survey, a
    node lost between two calls; and 70 finishes in a row (past one statement's 64 rows)."""
    calls = [call.record for call in sample_calls()]
    late, twice, surveyed = (replace(calls[i], breakpoint_node="") for i in (0, 2, 4))
    ops = [_started_op(store, late), _finished_op(store, late),
           _step_op(store, JourneyEvent(late.call_id, 0, T0, "ask_need", "no_input", breakpoint=True)),
           _started_op(store, twice), _finished_op(store, replace(twice, outcome=Outcome.ABANDONED)),
           _finished_op(store, twice),
           Op(OpKind.SURVEY, surveyed.call_id, (surveyed.call_id, 7, "2026-01-05T10:00:00+00:00")),
           _started_op(store, surveyed), _finished_op(store, surveyed)]
    dead = calls[6]  # a call of the node that died, started under its own holder
    ops += [Op(OpKind.CALL_STARTED, dead.call_id, ("node-dead", "node-dead", True, *store._call_row(dead))),
            Op(OpKind.NODE_LOST, "", ("node-dead",)), _started_op(store, calls[7])]
    many = [replace(calls[8], call_id=f"many-{i:03d}") for i in range(70)]
    ops += [_started_op(store, record) for record in many]
    ops += [_finished_op(store, record) for record in many]
    return ops


def test_awkward_orders_in_one_batch_write_what_one_by_one_writes(tmp_path: Path) -> None:
    batch_and_one_by_one(tmp_path, awkward_ops)
    db = sqlite3.connect(tmp_path / "batch.db")
    try:
        assert db.execute("SELECT breakpoint_node FROM calls WHERE call_id = 'call-000'").fetchone() == ("",)
        outcome = sample_calls()[2].record.outcome
        assert outcome is not None and outcome is not Outcome.ABANDONED
        assert db.execute("SELECT outcome FROM calls WHERE call_id = 'call-002'").fetchone() == (outcome.value,)
        assert db.execute("SELECT survey_score FROM calls WHERE call_id = 'call-004'").fetchone() == (7,)
        assert db.execute("SELECT outcome, in_progress FROM calls WHERE call_id = 'call-006'").fetchone() == (
            Outcome.INTERRUPTED.value, 0)
        assert db.execute("SELECT COUNT(*) FROM calls WHERE call_id LIKE 'many-%' AND NOT in_progress"
                          ).fetchone() == (70,)
    finally:
        db.close()
