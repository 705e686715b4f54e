"""A node of workers (`ivr serve --workers`): records carry the node's id, and the process that held each
call (`holder`, its ACD node id) decides whose calls a restart or an heir closes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.clock import FakeClock
from ivr.journey import CallRecord, Outcome
from ivr.store import CallQuery, SqliteStore

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[SqliteStore]]:
    stores: list[SqliteStore] = []
    yield stores
    for store in stores:
        store.close()


def _open(tmp_path: Path, opened: list[SqliteStore], holder: str | None) -> SqliteStore:
    store = SqliteStore(tmp_path / "calls.db", node_id="node-1", holder=holder, clock=FakeClock())
    opened.append(store)
    return store


def _outcome(store: SqliteStore, call_id: str) -> Outcome | None:
    detail = store.get_call(call_id)
    assert detail is not None
    return None if detail.in_progress else detail.record.outcome


def test_records_name_the_node_and_a_restarted_worker_leaves_a_siblings_calls_running(
        tmp_path: Path, opened: list[SqliteStore]) -> None:
    first = _open(tmp_path, opened, None)  # worker 0 as the node started it: the node itself
    second = _open(tmp_path, opened, "node-1-w1")
    first.call_started(CallRecord("w0-call", "1", "2", T0))
    second.call_started(CallRecord("w1-call", "1", "2", T0))
    assert first.flush(5) and second.flush(5)
    assert set(first.list_calls(CallQuery()).nodes.values()) == {"node-1"}
    again = _open(tmp_path, opened, "node-1-w1.1")  # worker 1 died and started again
    assert again.recovered == 0
    assert _outcome(again, "w0-call") is None, "a sibling's live call is never closed by a restart"
    again.node_lost("node-1-w1")  # the ACD saw the dead incarnation's lease run out
    assert again.flush(5)
    assert _outcome(again, "w1-call") is Outcome.INTERRUPTED
    assert _outcome(again, "w0-call") is None


def test_the_node_starting_again_closes_every_call_any_of_its_workers_left(
        tmp_path: Path, opened: list[SqliteStore]) -> None:
    for holder, call_id in ((None, "a"), ("node-1-w1", "b"), ("node-1-w1.3", "c")):
        store = _open(tmp_path, opened, holder)
        store.call_started(CallRecord(call_id, "1", "2", T0))
        assert store.flush(5)
    restarted_node = _open(tmp_path, opened, None)  # kill -9 of the node; worker 0 starts alone, first
    assert restarted_node.recovered == 3
    assert {_outcome(restarted_node, c) for c in "abc"} == {Outcome.INTERRUPTED}
