from __future__ import annotations

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
            await acd.agent_login("zz", "sip:zz@x")
        with pytest.raises(AcdError, match="agent 'a1': event 'pause' is illegal in state 'logged_out'"):
            await acd.agent_pause("a1")
        assert acd.agent_for_sip_user("a2") == "a2"


async def test_ticket_sees_offer_timeout_and_reoffer(simple: AcdConfig) -> None:
    clock = FakeClock()
    seen: list[AcdEvent] = []
    async with Acd(simple, MemoryBackend(), clock) as acd:
        acd.add_listener(seen.append)
        await acd.agent_login("a1", "sip:a1@10.0.0.1")
        await acd.agent_login("a2", "sip:a2@10.0.0.2")
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
        await acd.agent_login("a1", "sip:a1@x")
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
        await acd.agent_login("a1", "sip:a1@x")
        await acd.agent_pause("a1")
        ticket = await acd.enqueue(QueueRequest("general"), "c1")
        with pytest.raises(AcdError, match="disk on fire"):
            await acd.abandon("other")
        result = await ticket.wait_for_offer()
        assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.UNAVAILABLE
    finally:
        await acd.close()
