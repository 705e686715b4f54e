"""The single writer thread, against a fake target: batching, isolation of a bad op, retries, flush."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from ivr.store.records import Committed
from ivr.store.writer import Op, OpKind, SingleWriter


class Transient(Exception):
    pass


class FakeTarget:
    def __init__(self, *, bad: set[str] = frozenset(), transient_failures: int = 0) -> None:  # type: ignore[assignment]
        self.committed: list[list[str]] = []
        self.bad = bad
        self.transient_failures = transient_failures
        self.resets = 0
        self.gate = threading.Event()
        self.gate.set()

    def write(self, ops: Sequence[Op]) -> None:
        self.gate.wait()
        if self.transient_failures:
            self.transient_failures -= 1
            raise Transient("connection lost")
        if any(op.call_id in self.bad for op in ops):
            raise ValueError(f"bad row in {[op.call_id for op in ops]}")
        self.committed.append([op.call_id for op in ops])

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, Transient)

    def reset(self) -> None:
        self.resets += 1


def op(call_id: str, kind: OpKind = OpKind.CALL_STARTED) -> Op:
    return Op(kind, call_id, ())


def test_queued_ops_are_committed_together_in_order() -> None:
    target = FakeTarget()
    target.gate.clear()
    writer = SingleWriter(target)
    writer.submit(op("first"))
    for i in range(5):
        writer.submit(op(f"c{i}"))
    target.gate.set()
    assert writer.flush(5)
    flat = [c for batch in target.committed for c in batch]
    assert flat == ["first", "c0", "c1", "c2", "c3", "c4"]
    assert len(target.committed) <= 2  # the five queued behind the first go in one batch
    writer.close()


def test_one_bad_op_does_not_cost_the_others() -> None:
    target = FakeTarget(bad={"bad"})
    target.gate.clear()
    writer = SingleWriter(target)
    for name in ("a", "bad", "b"):
        writer.submit(op(name))
    target.gate.set()
    with structlog.testing.capture_logs() as logs:
        assert writer.flush(5)
    assert sorted(c for batch in target.committed for c in batch) == ["a", "b"]
    assert writer.failed_ops == 1
    assert any(e["event"] == "store_write_failed" and e["call_id"] == "bad" for e in logs)
    writer.close()


def test_transient_failure_is_retried_without_losing_ops() -> None:
    target = FakeTarget(transient_failures=2)
    writer = SingleWriter(target, retry_initial_s=0.0)
    with structlog.testing.capture_logs() as logs:
        writer.submit(op("x"))
        assert writer.flush(5)
    assert target.committed == [["x"]]
    assert target.resets == 2
    assert [e["attempt"] for e in logs if e["event"] == "store_write_retry"] == [1, 2]
    writer.close()


def test_listeners_hear_commits_and_a_failing_listener_is_contained() -> None:
    heard: list[Committed] = []
    writer = SingleWriter(FakeTarget())

    def broken(_c: Committed) -> None:
        raise RuntimeError("listener bug")

    writer.on_commit(broken)
    unsubscribe = writer.on_commit(heard.append)
    writer.submit(op("a", OpKind.CALL_FINISHED))
    writer.submit(op("a", OpKind.JOURNEY_EVENT))
    assert writer.flush(5)
    assert sum(c.calls_finished for c in heard) == 1 and sum(c.events for c in heard) == 1
    unsubscribe()
    writer.submit(op("b"))
    assert writer.flush(5)
    assert all("b" not in c.call_ids for c in heard)
    writer.close()


def test_close_commits_what_is_queued() -> None:
    target = FakeTarget()
    target.gate.clear()
    writer = SingleWriter(target)
    for i in range(3):
        writer.submit(op(f"c{i}"))
    target.gate.set()
    writer.close()
    assert [c for batch in target.committed for c in batch] == ["c0", "c1", "c2"]


def test_writes_close_together_share_one_commit_and_flush_does_not_wait_for_the_window() -> None:
    target = FakeTarget()
    writer = SingleWriter(target, group_commit_s=30.0)  # a window far longer than the flush below may take
    for i in range(3):
        writer.submit(op(f"c{i}"))
    assert writer.flush(10)
    assert target.committed == [["c0", "c1", "c2"]]
    writer.close()
