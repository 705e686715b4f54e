"""The dialect memory run off the event loop (issue 22): a backend that hangs holds neither the loop
nor the call; writes wait their turn in a bounded queue, and past it are dropped with a warning.

The backend is a fake whose queries block on a `threading.Event` (a database that does not answer);
time on the loop side is a `FakeClock`, so the lookup budget runs out exactly when the test says.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr.clock import FakeClock
from ivr.store.dialects import open_dialect_worker
from ivr.store.dialectworker import DialectWorker
from ivr.voice import SqliteDialectMemory

WAIT_S = 10.0
"""How long a test waits for the worker thread to reach a point (never reached when all is well)."""


class StuckMemory:
    """A dialect memory whose every query waits until `release` is set (a database that does not answer)."""

    def __init__(self, remembered: dict[str, str] | None = None) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        """Set when a query has started (and is held)."""
        self.remembered = dict(remembered or {})
        self.asked: list[str] = []
        self.written: list[tuple[str, str]] = []
        self.closed = False

    def _hold(self) -> None:
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the memory"

    def get(self, caller: str) -> str | None:
        self._hold()
        self.asked.append(caller)
        return self.remembered.get(caller)

    def set(self, caller: str, dialect: str) -> None:
        self._hold()
        self.written.append((caller, dialect))
        self.remembered[caller] = dialect

    def close(self) -> None:
        self.closed = True


async def ticking(clock: FakeClock, ticks: list[float]) -> None:
    """Counts 20 ms periods on the loop, as the media clock does."""
    while True:
        await clock.sleep(0.02)
        ticks.append(clock.now())


async def test_a_lookup_answers_what_is_remembered() -> None:
    memory = StuckMemory({"13800138000": "yue"})
    memory.release.set()
    worker = DialectWorker(lambda: memory, clock=FakeClock())
    assert await worker.lookup("13800138000") == "yue"
    assert await worker.lookup("13900000000") is None
    worker.close()
    assert memory.closed


async def test_a_hanging_lookup_holds_neither_the_loop_nor_the_call_past_its_budget() -> None:
    clock = FakeClock()
    memory = StuckMemory({"13800138000": "yue"})
    worker = DialectWorker(lambda: memory, clock=clock, lookup_budget_s=0.2)
    ticks: list[float] = []
    ticker = asyncio.create_task(ticking(clock, ticks))
    lookup = asyncio.create_task(worker.lookup("13800138000"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the loop's lookups of an iteration are handed over at its end
    assert memory.entered.wait(WAIT_S)  # the query is running, held by the database
    with capture_logs() as logs:
        await clock.advance(0.19)
        assert not lookup.done()
        assert len(ticks) == 9  # the loop went on while the query hung
        await clock.advance(0.01)
        assert lookup.done() and lookup.result() is None  # "nothing remembered", at the budget
    assert worker.late_lookups == 1
    assert [e["event"] for e in logs] == ["dialect_lookup_late"]
    await clock.advance(1.01)
    assert len(ticks) == 60  # and still does
    ticker.cancel()
    memory.release.set()
    worker.close()
    assert memory.asked == ["13800138000"]


async def test_each_lookup_gets_its_own_budget() -> None:
    """A lookup asked later runs out at its own deadline, not the first's; one answered in time is not counted
    late when the time its budget would have run out passes."""
    clock = FakeClock()
    memory = StuckMemory({"13800138000": "yue"})
    worker = DialectWorker(lambda: memory, clock=clock, lookup_budget_s=0.2)
    first = asyncio.create_task(worker.lookup("13800138000"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert memory.entered.wait(WAIT_S)  # held by the database
    await clock.advance(0.1)
    second = asyncio.create_task(worker.lookup("13900000000"))
    await asyncio.sleep(0)  # asked at 0.1
    await clock.advance(0.1)
    assert first.done() and first.result() is None  # at 0.2: the first's budget
    assert not second.done()
    await clock.advance(0.09)
    assert not second.done()
    await clock.advance(0.01)
    assert second.done() and second.result() is None  # at 0.3: its own
    assert worker.late_lookups == 2
    memory.release.set()
    answered = asyncio.create_task(worker.lookup("13800138000"))
    for _ in range(1000):  # the thread answers (the held queries first)
        await asyncio.sleep(0)
        if answered.done():
            break
    else:
        assert await asyncio.wait_for(answered, WAIT_S)
    assert answered.result() == "yue"
    await clock.advance(0.5)  # past the answered lookup's budget
    assert worker.late_lookups == 2
    worker.close()


async def test_a_lookup_still_queued_when_its_budget_runs_out_is_never_asked() -> None:
    clock = FakeClock()
    memory = StuckMemory()
    worker = DialectWorker(lambda: memory, clock=clock, lookup_budget_s=0.2)
    worker.set("13800138000", "yue")  # a slow write at a call's end
    assert memory.entered.wait(WAIT_S)
    lookup = asyncio.create_task(worker.lookup("13900000000"))
    await asyncio.sleep(0)  # the lookup is queued and its budget armed
    await clock.advance(0.2)
    assert lookup.done() and lookup.result() is None
    memory.release.set()
    worker.close()
    assert memory.written == [("13800138000", "yue")]
    assert memory.asked == []


async def test_a_lookup_after_a_write_from_the_same_number_sees_it() -> None:
    memory = StuckMemory()
    memory.release.set()
    worker = DialectWorker(lambda: memory, clock=FakeClock())
    worker.set("13800138000", "en")
    assert await worker.lookup("13800138000") == "en"
    worker.close()


async def test_writes_wait_for_a_slow_database_and_past_the_bound_are_dropped_with_a_warning() -> None:
    memory = StuckMemory()
    worker = DialectWorker(lambda: memory, clock=FakeClock(), max_pending=2)
    worker.set("13800000001", "yue")  # taken by the thread, held by the database
    assert memory.entered.wait(WAIT_S)
    worker.set("13800000002", "en")
    worker.set("13800000003", "yue")  # the queue is full now
    with capture_logs() as logs:
        worker.set("13800000004", "en")
        assert await worker.lookup("13800000001") is None  # answered at once: nothing could be asked
    assert worker.dropped_writes == 1 and worker.late_lookups == 1
    dropped = [e for e in logs if e["event"] == "dialect_write_dropped"]
    assert dropped == [{"event": "dialect_write_dropped", "log_level": "warning", "reason": "queue_full",
                        "dropped_writes": 1}]
    assert [e["event"] for e in logs] == ["dialect_write_dropped", "dialect_lookup_skipped"]
    memory.release.set()
    worker.close()  # the queued writes reach the database before the memory is closed
    assert memory.written == [("13800000001", "yue"), ("13800000002", "en"), ("13800000003", "yue")]
    assert memory.closed


class FailingMemory(StuckMemory):
    """Fails its first query (a database error the backend did not turn into a hint), then answers."""

    def get(self, caller: str) -> str | None:
        if not self.asked:
            self.asked.append(caller)
            raise sqlite3.OperationalError("database is locked")
        return super().get(caller)


async def test_a_failed_query_answers_nothing_and_the_worker_goes_on() -> None:
    memory = FailingMemory({"13800138000": "yue"})
    memory.release.set()
    worker = DialectWorker(lambda: memory, clock=FakeClock())
    with capture_logs() as logs:
        assert await worker.lookup("13800138000") is None
    assert [(e["event"], e["error"]) for e in logs] == [("dialect_memory_failed", "database is locked")]
    assert await worker.lookup("13800138000") == "yue"
    worker.close()


def test_an_error_opening_the_memory_is_raised_by_the_constructor() -> None:
    def unreachable() -> StuckMemory:
        raise ConnectionRefusedError("no database here")

    with pytest.raises(ConnectionRefusedError, match="no database here"):
        DialectWorker(unreachable)


async def test_sqlite_runs_on_the_worker_thread_and_close_keeps_the_queued_writes(tmp_path: Path) -> None:
    path = tmp_path / "ivr.db"
    worker = open_dialect_worker(path, clock=FakeClock())  # a connection made on, and used from, its thread
    worker.set("13800138000", "yue")
    assert await worker.lookup("13800138000") == "yue"
    worker.set("13800138000", "en")
    worker.close()
    reopened = SqliteDialectMemory(path)
    assert reopened.get("13800138000") == "en"
    reopened.close()


async def test_the_lookups_of_one_loop_iteration_reach_the_thread_together() -> None:
    memory = StuckMemory({"13800000001": "yue", "13800000003": "en"})
    worker = DialectWorker(lambda: memory, clock=FakeClock())
    calls = [asyncio.create_task(worker.lookup(f"1380000000{i}")) for i in (1, 2, 3)]
    await asyncio.sleep(0)  # all three ask in this iteration
    assert worker._jobs.qsize() == 0 and len(worker._outbox) == 3
    await asyncio.sleep(0)
    assert len(worker._outbox) == 0  # one hand-off: the thread is woken once for the three
    memory.release.set()
    assert await asyncio.gather(*calls) == ["yue", None, "en"]
    assert memory.asked == ["13800000001", "13800000002", "13800000003"]
    worker.close()


async def test_lookups_asked_within_gather_s_reach_the_thread_together() -> None:
    memory = StuckMemory({"13800000001": "yue"})
    worker = DialectWorker(lambda: memory, clock=FakeClock(), gather_s=0.05)
    first = asyncio.create_task(worker.lookup("13800000001"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(worker._outbox) == 1  # not handed over at the end of the iteration: it waits for company
    second = asyncio.create_task(worker.lookup("13800000002"))
    await asyncio.sleep(0)
    assert worker._jobs.qsize() == 0 and len(worker._outbox) == 2
    await asyncio.sleep(0.1)
    assert len(worker._outbox) == 0 and memory.entered.is_set()  # one hand-off for the two
    memory.release.set()
    assert list(await asyncio.gather(first, second)) == ["yue", None]
    assert memory.asked == ["13800000001", "13800000002"]
    worker.close()
