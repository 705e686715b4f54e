from __future__ import annotations

import asyncio

import pytest
import structlog

from ivr.acd import Acd, AcdError, MemoryBackend, UnknownAgent, UnknownQueue, run_clock
from ivr.acd.config import AcdConfig
from ivr.acd.events import AcdEvent, AgentChanged, OfferFailed, OfferMade
from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.clock import FakeClock


async def test_api_misuse_raises_naming_the_thing(simple: AcdConfig) -> None:
    async with Acd(simple, MemoryBackend(), FakeClock()) as acd:
        with pytest.raises(UnknownQueue, match="no queue 'claimz' for call 'c1'"):
            await acd.enqueue(QueueRequest("claimz"), "c1")
        with pytest.raises(UnknownAgent, match="no agent 'zz'"):
            await acd.controls.login("zz", "sip:zz@x")
        with pytest.raises(AcdError, match="agent 'a1': event 'pause' is illegal in state 'logged_out'"):
            await acd.controls.pause("a1")
        assert acd.agent_for_sip_user("a2") == "a2"


async def test_ticket_sees_offer_timeout_and_reoffer(simple: AcdConfig) -> None:
    clock = FakeClock()
    seen: list[AcdEvent] = []
    async with Acd(simple, MemoryBackend(), clock) as acd:
        acd.add_listener(seen.append)
        await acd.controls.login("a1", "sip:a1@10.0.0.1")
        await acd.controls.login("a2", "sip:a2@10.0.0.2")
        with structlog.testing.capture_logs() as logs:
            ticket = await acd.enqueue(QueueRequest("general", context={"intent": "claims"}), "c1")
        assert {"event": "call_enqueued", "call_id": "c1", "queue": "general", "position": 1} in [
            {k: v for k, v in entry.items() if k != "log_level"} for entry in logs
        ]
        (first,) = await ticket.wait_for_offer()
        assert first.context == {"intent": "claims"} and first.deadline == 20.0
        await run_clock(clock, 20.0, acd)  # nobody answers: the ACD's own ring timeout fires
        updates = await ticket.next_updates()
        assert [type(u) for u in updates] == [OfferFailed, OfferMade]
        second = updates[1]
        assert isinstance(second, OfferMade) and second.offer.agent_id != first.agent_id
        assert await acd.ring_answered(second.offer)
        result = await ticket.wait_for_offer()
        assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.ANSWERED
        assert ticket.result == result and ticket.position() is None
        assert any(isinstance(e, AgentChanged) and e.event == "answer" for e in seen)
        await run_clock(clock, 60.0, acd)
        await acd.call_ended(second.offer.agent_id)
        assert acd.agent(second.offer.agent_id).talk_s == 60.0


async def test_abandon_ends_the_ticket_and_frees_the_agent(simple: AcdConfig) -> None:
    async with Acd(simple, MemoryBackend(), FakeClock()) as acd:
        await acd.controls.login("a1", "sip:a1@x")
        ticket = await acd.enqueue(QueueRequest("general"), "c1")
        (offer,) = await ticket.wait_for_offer()
        await acd.abandon("c1")
        result = await ticket.wait_for_offer()
        assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.ABANDONED
        assert not await acd.ring_answered(offer)  # the agent picked up too late: hang the leg up
        assert acd.agent("a1").state.value == "idle"
        await acd.abandon("c1")  # twice is harmless


class _BrokenBackend(MemoryBackend):
    async def read(self, after: str | None) -> list:  # type: ignore[type-arg]
        entries = await super().read(after)
        if any(e.command.__class__.__name__ == "Abandon" for e in entries):
            raise ValueError("disk on fire")
        return entries


async def test_a_failed_node_sends_waiting_callers_to_a_fallback(simple: AcdConfig) -> None:
    acd = Acd(simple, _BrokenBackend(), FakeClock())
    await acd.start()
    try:
        await acd.controls.login("a1", "sip:a1@x")
        await acd.controls.pause("a1")
        ticket = await acd.enqueue(QueueRequest("general"), "c1")
        with pytest.raises(AcdError, match="disk on fire"):
            await acd.abandon("other")
        result = await ticket.wait_for_offer()
        assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.UNAVAILABLE
    finally:
        await acd.close()


async def test_a_node_that_stalls_past_its_lease_queues_its_callers_again(simple: AcdConfig) -> None:
    """The other node declares the stalled one dead and drops its callers; the stalled node, which is
    alive after all, puts them back rather than telling callers still on the line the queue dropped them."""
    from ivr.acd import MemoryLog

    clock, shared = FakeClock(), MemoryLog()
    async with Acd(simple, MemoryBackend("a", shared), clock) as a, Acd(simple, MemoryBackend("b", shared), clock) as b:
        await b.controls.login("a1", "sip:a1@x")
        await b.controls.pause("a1", "meeting")  # someone is logged in, nobody is free: the caller waits
        ticket = await a.enqueue(QueueRequest("general", priority=2, context={"intent": "claim"}), "c1")
        assert ticket.result is None and ticket.position() == 1
        for task in a.replica.tasks:  # node a stalls: its timers send nothing for longer than its lease
            if task.get_name() != "acd-apply-a":
                task.cancel()
        with structlog.testing.capture_logs() as logs:
            await run_clock(clock, simple.lease_s + 5.0, b)
            for _ in range(20):  # node a catches up with the log and queues its caller again
                await asyncio.sleep(0)
            await b.settled()
        assert any(e["event"] == "acd_lease_lost_caller_requeued" for e in logs)
        assert ticket.result is None, "the caller is still waiting, not dropped"
        assert a.core.position("c1") == 1 and b.core.position("c1") == 1, "both nodes see the caller queued again"
        assert b.core.callers["c1"].priority == 2 and b.core.callers["c1"].request.context == {"intent": "claim"}
        await b.controls.resume("a1")
        offers = await ticket.wait_for_offer()
        assert isinstance(offers, tuple) and offers[0].call_id == "c1"


async def test_an_agent_still_talking_on_a_stalled_nodes_call_is_offered_nothing_until_it_ends(
    simple: AcdConfig,
) -> None:
    """The lost lease ends the stalled node's bridged call in every copy of the ACD, but the agent is
    still talking on it: they must not be offered a second call until the bridge really ends."""
    from ivr.acd import MemoryLog
    from ivr.acd.service import HELD_REASON

    clock, shared = FakeClock(), MemoryLog()
    async with Acd(simple, MemoryBackend("a", shared), clock) as a, Acd(simple, MemoryBackend("b", shared), clock) as b:
        await b.controls.login("a1", "sip:a1@x")
        ticket = await a.enqueue(QueueRequest("general"), "c1")
        (offer,) = await ticket.wait_for_offer()
        assert await a.ring_answered(offer)
        for task in a.replica.tasks:  # node a stalls past its lease, its bridge to agent a1 still up
            if task.get_name() != "acd-apply-a":
                task.cancel()
        with structlog.testing.capture_logs() as logs:
            await run_clock(clock, simple.lease_s + 5.0, b)
            for _ in range(20):
                await asyncio.sleep(0)
            await b.settled()
        assert any(e["event"] == "acd_lease_lost_agent_held" for e in logs)
        assert b.agent("a1").pause_reason == HELD_REASON
        waiting = await b.enqueue(QueueRequest("general"), "c2")
        await run_clock(clock, 60.0, b)
        assert waiting.result is None and not b.core.offers, "a1 is still on c1: no second call"
        await a.call_ended("a1", "c1")  # the bridge ends: a1 is free again and takes c2
        (second,) = await waiting.wait_for_offer()
        assert second.agent_id == "a1" and second.call_id == "c2"
