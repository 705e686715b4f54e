"""The same queue suite against both backends, plus several nodes sharing one Redis.

`nodes(name)` builds an ACD node on the backend under test; nodes built in one test share state
(one MemoryLog, or one Redis stream), so every test also runs as a small cluster. Time is a
FakeClock stepped deadline by deadline (`run_clock`), whatever the backend.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from ivr.acd import Acd, MemoryBackend, MemoryLog, RedisBackend, load_config, run_clock
from ivr.acd.config import AcdConfig
from ivr.acd.events import DispatchChange, OfferKind
from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.clock import FakeClock
from ivr.dispatching import DispatchRequest

pytestmark = pytest.mark.integration

NodeFactory = Callable[[str], Awaitable[Acd]]
_keys = itertools.count()

# 10:00 in Beijing: the demo night rule is off.
DAY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def demo_config(project_root) -> AcdConfig:  # type: ignore[no-untyped-def]
    return load_config(project_root / "config/agents.yaml", project_root / "config/queues.yaml")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=DAY)


@pytest.fixture(params=["memory", "redis"])
async def nodes(request, demo_config: AcdConfig, clock: FakeClock) -> AsyncIterator[NodeFactory]:  # type: ignore[no-untyped-def]
    started: list[Acd] = []
    log = MemoryLog()
    key = f"test{next(_keys)}"
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    async def make(node_id: str) -> Acd:
        backend = MemoryBackend(node_id, log) if not url else RedisBackend(url, node_id=node_id, key=key)
        acd = Acd(demo_config, backend, clock)
        await acd.start()
        started.append(acd)
        return acd

    yield make
    for acd in started:
        await acd.close()


async def test_priority_then_arrival_with_position_and_estimate(nodes: NodeFactory) -> None:
    acd = await nodes("A")
    await acd.controls.login("a1001", "sip:a1001@10.1.0.1")
    busy = await acd.enqueue(QueueRequest("general"), "c0")
    (offer,) = await busy.wait_for_offer()
    assert await acd.ring_answered(offer)
    tickets = {}
    for call_id, priority in [("c1", 0), ("c2", 0), ("elder", 10), ("c3", 0)]:
        tickets[call_id] = await acd.enqueue(QueueRequest("general", priority=priority), call_id)
    assert [tickets[c].position() for c in ("elder", "c1", "c2", "c3")] == [1, 2, 3, 4]
    assert tickets["c3"].estimated_wait_s() == 4 * 240.0  # configured handle time, one agent
    served = []
    for _ in range(4):
        await acd.call_ended("a1001")
        await run_clock(acd.clock, 15.0, acd)  # a1001's wrap-up
        nxt = next(t for t in tickets.values() if t.result is None and t.position() == 1)
        (offer,) = await nxt.wait_for_offer()
        assert await acd.ring_answered(offer)
        served.append(offer.call_id)
    assert served == ["elder", "c1", "c2", "c3"]


async def test_no_answer_moves_on_to_the_next_agent(nodes: NodeFactory, clock: FakeClock) -> None:
    acd = await nodes("A")
    await acd.controls.login("a1001", "sip:a1001@10.1.0.1")
    await acd.controls.login("a1003", "sip:a1003@10.1.0.3")
    ticket = await acd.enqueue(QueueRequest("general"), "c1")
    tried = []
    for _ in range(3):
        (offer,) = await ticket.wait_for_offer()
        tried.append(offer.agent_id)
        await run_clock(clock, offer.ring_timeout_s, acd)
    assert tried[:2] in (["a1001", "a1003"], ["a1003", "a1001"])
    views = {a.agent_id: a for a in acd.agents()}
    assert views["a1001"].calls_missed + views["a1003"].calls_missed == 3
    await acd.abandon("c1")
    assert all(v.state.value == "idle" for v in acd.agents())  # nobody left ringing


async def test_callback_keeps_place_and_is_offered_on_the_callers_node(nodes: NodeFactory) -> None:
    acd = await nodes("A")
    await acd.controls.login("a3001", "sip:a3001@10.3.0.1")
    first = await acd.enqueue(QueueRequest("claims", dialect="yue"), "c0")
    (offer,) = await first.wait_for_offer()
    await acd.ring_answered(offer)
    ticket = await acd.enqueue(QueueRequest("claims", dialect="yue"), "c1")
    later = await acd.enqueue(QueueRequest("claims", dialect="yue"), "c2")
    assert await acd.request_callback("c1", "13800138000") == 1
    result = await ticket.wait_for_offer()
    assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.CALLBACK
    assert later.position() == 2
    await acd.call_ended("a3001")
    await run_clock(acd.clock, 15.0, acd)
    callback = await acd.next_callback_offer()
    assert (callback.kind, callback.call_id, callback.agent_id) == (OfferKind.CALLBACK, "c1", "a3001")
    assert callback.callback_number == "13800138000"


async def test_ring_all_race_has_one_winner(nodes: NodeFactory, demo_config: AcdConfig) -> None:
    acd = await nodes("A")
    for agent_id in ("a1001", "a1003", "a2001"):
        await acd.controls.login(agent_id, f"sip:{agent_id}@10.0.0.1")
    await acd.dispatch(DispatchRequest("north", ("shanghai",), ("north-service",), reason="drill", requested_by="ops"))
    ticket = await acd.enqueue(QueueRequest("north-service"), "c1")
    (offer,) = await ticket.wait_for_offer()  # fewest-calls: one agent at a time
    assert offer.agent_id in ("a1001", "a1003", "a2001")
    assert await acd.ring_answered(offer)
    assert not await acd.ring_answered(offer)  # a duplicate 200 OK changes nothing
    log = acd.dispatch_log()
    changes = [(e.kind, e.dispatch.reason, e.dispatch.requested_by) for e in log]
    assert changes == [(DispatchChange.STARTED, "drill", "ops")]


async def test_dispatch_lends_agents_of_other_sites(nodes: NodeFactory, clock: FakeClock) -> None:
    acd = await nodes("A")
    await acd.controls.login("a1001", "sip:a1001@10.1.0.1")  # Beijing: not a south-service member
    ticket = await acd.enqueue(QueueRequest("south-service"), "typhoon-caller")
    assert ticket.result is not None and ticket.result.kind is QueueOutcomeKind.UNAVAILABLE
    await acd.controls.login("a3002", "sip:a3002@10.3.0.2")
    await acd.controls.pause("a3002", "evacuated")
    ticket = await acd.enqueue(QueueRequest("south-service"), "c1")
    assert ticket.result is None and ticket.position() == 1
    typhoon = DispatchRequest("south", ("beijing",), until=DAY + timedelta(hours=1), reason="typhoon")
    record = await acd.dispatch(typhoon)
    assert "south-service" in record.queues
    (offer,) = await ticket.wait_for_offer()
    assert offer.agent_id == "a1001"
    await run_clock(clock, 3600.0, acd)
    assert [e.kind for e in acd.dispatch_log()] == [DispatchChange.STARTED, DispatchChange.EXPIRED]
    assert acd.active_dispatches() == []


async def test_caller_on_node_a_is_offered_agent_logged_in_on_node_b(nodes: NodeFactory) -> None:
    a = await nodes("A")
    b = await nodes("B")
    await b.controls.login("a2001", "sip:a2001@10.2.0.1")  # REGISTER arrived at node B
    ticket = await a.enqueue(QueueRequest("east-service", dialect="wuu"), "c1")
    (offer,) = await ticket.wait_for_offer()
    assert (offer.agent_id, offer.contact, offer.node) == ("a2001", "sip:a2001@10.2.0.1", "A")
    assert await a.ring_answered(offer)
    await b.settled()
    assert b.agent("a2001").state.value == "in_call"  # node B sees the agent busy at once
    other = await b.enqueue(QueueRequest("east-service"), "c2")
    await a.settled()
    assert other.position() == 1 and a.core.position("c2") == 1


async def test_dead_node_loses_its_calls_but_no_one_elses_place(nodes: NodeFactory, clock: FakeClock) -> None:
    a = await nodes("A")
    b = await nodes("B")
    await a.controls.login("a1002", "sip:a1002@10.1.0.2")
    await a.controls.pause("a1002", "meeting")  # staffed but busy: callers queue
    mine = await a.enqueue(QueueRequest("complaints"), "a-1")
    await b.enqueue(QueueRequest("complaints"), "b-1")
    await b.enqueue(QueueRequest("complaints"), "b-2")
    await b.request_callback("b-2", "13900000000")
    late = await a.enqueue(QueueRequest("complaints"), "a-2")
    assert [mine.position(), late.position()] == [1, 4]
    await b.close()  # node B dies: no goodbye, its heartbeats just stop
    await run_clock(clock, demo_lease(a) + 1.0, a)
    assert a.core.position("b-1") is None  # B's caller died with B
    assert (mine.position(), a.core.position("b-2"), late.position()) == (1, 2, 3)
    assert a.core.callers["b-2"].node == "A"  # the callback is A's to place now
    await a.controls.resume("a1002")
    (offer,) = await mine.wait_for_offer()
    assert await a.ring_answered(offer)
    await a.call_ended("a1002")
    await run_clock(clock, 30.0, a)
    callback = await a.next_callback_offer()
    assert (callback.call_id, callback.node) == ("b-2", "A")


def demo_lease(acd: Acd) -> float:
    return acd.config.lease_s


async def test_late_node_replays_the_log(nodes: NodeFactory) -> None:
    a = await nodes("A")
    await a.controls.login("a1002", "sip:a1002@10.1.0.2")
    await a.controls.pause("a1002", "training")
    for i in range(5):
        await a.enqueue(QueueRequest("complaints", priority=i % 2), f"c{i}")
    c = await nodes("C")
    await c.settled()
    assert [c.core.position(f"c{i}") for i in range(5)] == [a.core.position(f"c{i}") for i in range(5)]
    assert c.agent("a1002").pause_reason == "training"
