"""A bounded log: snapshots, trimming, starting from a snapshot, starting over when behind.

The stateful machines (test_stateful.py) check that a restored snapshot is the very state; here the
facade's side runs on a shared `MemoryLog`, which trims like the Redis stream does.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from ivr.acd import Acd, BackendError, MemoryBackend, MemoryLog, Snapshot, StoreUnreachable, run_clock
from ivr.acd.commands import AgentLogin, Enqueue, LogEntry
from ivr.acd.config import AcdConfig
from ivr.acd.distributor import Distributor
from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.clock import FakeClock

from .conftest import DAY, agent, agents_yaml, config


class GatedBackend(MemoryBackend):
    """A node whose reads can be held back (a stalled node falling behind the log)."""

    def __init__(self, node_id: str, log: MemoryLog) -> None:
        super().__init__(node_id, log)
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self, after: str | None) -> list[LogEntry]:
        await self.gate.wait()
        return await super().read(after)


def test_a_command_repeated_by_its_sender_is_applied_once(simple: AcdConfig) -> None:
    core = Distributor(simple)
    first = core.apply(AgentLogin("a1", "sip:a1@x"), node="n1", now=0.0, wall=DAY, stamp=("n1/x", 1))
    core.apply(Enqueue("c1", QueueRequest("general")), node="n1", now=1.0, wall=DAY, stamp=("n1/x", 2))
    assert first
    assert core.apply(Enqueue("c1", QueueRequest("general")), node="n1", now=2.0, wall=DAY, stamp=("n1/x", 2)) == []
    assert len(core.offers) == 1


def test_a_snapshot_made_with_other_queues_is_refused(simple: AcdConfig) -> None:
    other = config(agents_yaml(agent("a1")), "queues:\n  - {id: other}\n")
    text = Distributor(simple).snapshot()
    with pytest.raises(BackendError, match="other agents.yaml/queues.yaml"):
        Distributor.restore(other, text)
    with pytest.raises(BackendError, match="cannot be read"):
        Distributor.restore(simple, json.dumps({"version": 2, "config": Distributor(simple).state.config_digest}))


async def busy(acd: Acd, calls: int, prefix: str) -> None:
    """Callers come and go while the one agent talks: every one is a few log entries."""
    for n in range(calls):
        call_id = f"{prefix}{n}"
        await acd.enqueue(QueueRequest("general", priority=n % 3), call_id)
        if n % 2:
            await acd.abandon(call_id)


async def test_the_log_is_trimmed_and_a_new_node_starts_from_the_snapshot(simple: AcdConfig) -> None:
    clock, log = FakeClock(wall_start=datetime(2026, 1, 5, 2, 0, tzinfo=UTC)), MemoryLog()
    async with Acd(simple, MemoryBackend("a", log), clock, snapshot_every=10) as a:
        await a.controls.login("a1", "sip:a1@x")
        await busy(a, 60, "c")
        await run_clock(clock, 1.0, a)
        assert log.snapshot is not None and log.base > 0, "snapshots were saved and the log trimmed"
        assert len(log.entries) <= 2 * 10 + 5
        async with Acd(simple, MemoryBackend("b", log), clock, snapshot_every=10) as b:
            await run_clock(clock, 1.0, a, b)
            assert b.replica.resyncs == 0
            assert b.core.snapshot() == a.core.snapshot()
            assert [c.call_id for c in b.core.waiting_in_order()] == [c.call_id for c in a.core.waiting_in_order()]


async def test_a_node_behind_the_trimmed_log_starts_over_from_the_snapshot(simple: AcdConfig) -> None:
    clock, log = FakeClock(wall_start=datetime(2026, 1, 5, 2, 0, tzinfo=UTC)), MemoryLog()
    slow = GatedBackend("b", log)
    async with Acd(simple, MemoryBackend("a", log), clock, snapshot_every=10) as a, Acd(
        simple, slow, clock, snapshot_every=10
    ) as b:
        await a.controls.login("a1", "sip:a1@x")
        ticket = await b.enqueue(QueueRequest("general", priority=5), "mine")
        await run_clock(clock, 1.0, a, b)
        slow.gate.clear()  # b stalls (well within its lease) while a's callers fill the log
        await busy(a, 60, "c")
        for _ in range(5):
            await asyncio.sleep(0)
        assert log.base > int(b.replica.after or 0) + 1, "the log was trimmed past b's place"
        slow.gate.set()
        await run_clock(clock, 1.0, a, b)
        assert b.replica.resyncs == 1
        assert b.core.snapshot() == a.core.snapshot(), "b holds the same state as a after starting over"
        assert ticket.result is None and b.core.position("mine") == 1, "b's own caller kept its place"


class FlakyBackend(MemoryBackend):
    """A store that can go away (reads and snapshot probes fail) and come back."""

    def __init__(self) -> None:
        super().__init__("a")
        self.down = False
        self.wake = asyncio.Event()

    async def read(self, after: str | None) -> list[LogEntry]:
        if self.down:
            raise StoreUnreachable("store down")
        reading = asyncio.ensure_future(super().read(after))
        woken = asyncio.ensure_future(self.wake.wait())
        done, _ = await asyncio.wait({reading, woken}, return_when=asyncio.FIRST_COMPLETED)
        woken.cancel()
        if reading in done:
            return reading.result()
        reading.cancel()
        raise StoreUnreachable("store went away")

    async def latest_snapshot(self) -> Snapshot | None:
        if self.down:
            raise StoreUnreachable("store down")
        return await super().latest_snapshot()


@pytest.mark.parametrize(("outage_s", "kept"), [(5.0, True), (60.0, False)], ids=["short", "past-outage_s"])
async def test_callers_wait_through_a_store_outage_shorter_than_outage_s(
    simple: AcdConfig, outage_s: float, kept: bool
) -> None:
    clock, backend = FakeClock(), FlakyBackend()
    async with Acd(simple, backend, clock, outage_s=30.0) as acd:
        await acd.controls.login("a1", "sip:a1@x")
        await acd.controls.pause("a1")
        ticket = await acd.enqueue(QueueRequest("general", priority=4), "c1")
        backend.down = True
        backend.wake.set()
        for _ in range(int(outage_s)):  # the node retries every second at most: step through them
            await clock.advance(1.0)
            for _ in range(10):
                await asyncio.sleep(0)
        backend.down = False
        backend.wake.clear()
        await clock.advance(1.0)
        await acd.settled()
        if kept:
            assert ticket.result is None and acd.core.position("c1") == 1
            await acd.controls.resume("a1")
            offers = await ticket.wait_for_offer()
            assert isinstance(offers, tuple) and offers[0].call_id == "c1"
        else:
            assert ticket.result is not None and ticket.result.kind is QueueOutcomeKind.UNAVAILABLE
