"""Issue 25: a caller whose leg ends is withdrawn at once, wherever they are, and costs no agent a miss.

Pure distributor cases (waiting, being rung by one agent or ring-all, told a callback is possible)
and the facade's side: `Acd.abandon` returns the offers the engine must CANCEL, and the ticket
hands out no offer afterwards.
"""

from __future__ import annotations

import pytest

from ivr.acd import Acd, MemoryBackend, run_clock
from ivr.acd.agent import AgentState, AgentStatus
from ivr.acd.commands import Abandon, RingAnswered, RingFailed
from ivr.acd.config import AcdConfig
from ivr.acd.events import (
    AcdEvent,
    CallbackSuggested,
    CallerLeft,
    CommandRejected,
    OfferMade,
    OfferWithdrawn,
    RejectReason,
    WithdrawReason,
)
from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.clock import FakeClock

from .conftest import Harness, agent, agents_yaml, config, offers

RING_ALL = config(
    agents_yaml(agent("a1"), agent("a2"), agent("a3")),
    "queues:\n  - {id: general, strategy: ring-all, ring_timeout_s: 20, max_no_answer: 1}\n",
)
CALLBACK = config(
    agents_yaml(agent("a1")),
    "queues:\n  - {id: general, strategy: longest-idle, max_wait_s: 30, overflow: callback}\n",
)


def withdrawn(events: list[AcdEvent]) -> dict[str, WithdrawReason]:
    return {e.offer.agent_id: e.reason for e in events if isinstance(e, OfferWithdrawn)}


def test_leg_ending_while_ring_all_rings_withdraws_every_agent_at_once_without_a_miss() -> None:
    h = Harness(RING_ALL)
    h.login("a1", "a2", "a3")
    ring = offers(h.enqueue("c1"))
    assert len(ring) == 3
    events = h.do(Abandon("c1"))
    assert withdrawn(events) == {a: WithdrawReason.CALLER_LEFT for a in ("a1", "a2", "a3")}
    (left,) = [e for e in events if isinstance(e, CallerLeft)]
    assert left.result.kind is QueueOutcomeKind.ABANDONED
    for a in ("a1", "a2", "a3"):
        view = h.core.agent_view(a)
        assert (view.status, view.state) == (AgentStatus.AVAILABLE, AgentState.IDLE)
        assert (view.calls_missed, view.consecutive_misses) == (0, 0)  # max_no_answer 1: a miss would pause
    # The engine's CANCELs come back as failures or late answers: stale, they change nothing.
    for offer in ring:
        (rejected,) = h.do(RingFailed(offer.offer_id))
        assert isinstance(rejected, CommandRejected) and rejected.reason is RejectReason.STALE_OFFER
    (late,) = h.do(RingAnswered(ring[0].offer_id))
    assert isinstance(late, CommandRejected)
    assert h.core.agent_view("a1").calls_missed == 0 and h.core.agent_view("a1").status is AgentStatus.AVAILABLE
    # The ring timeout of the withdrawn offers passes: nothing is offered for the gone caller, ever.
    assert not any(isinstance(e, OfferMade) for e in h.at(25.0) + h.at(200.0))


def test_leg_ending_while_waiting_leaves_the_queue_and_the_next_caller_moves_up(simple: AcdConfig) -> None:
    h = Harness(simple)
    h.login("a1")
    h.do(RingAnswered(offers(h.enqueue("busy"))[0].offer_id))  # a1 talks: everybody after waits
    h.enqueue("c1")
    h.enqueue("c2")
    events = h.do(Abandon("c1"))
    assert withdrawn(events) == {}
    assert h.core.position("c1") is None and h.core.position("c2") == 1
    assert h.core.queue_stats("general").abandoned == 1


def test_leg_ending_after_a_callback_was_suggested_withdraws_the_caller() -> None:
    h = Harness(CALLBACK)
    h.login("a1")
    h.do(RingAnswered(offers(h.enqueue("busy"))[0].offer_id))
    h.enqueue("c1")
    assert any(isinstance(e, CallbackSuggested) for e in h.at(30.0))
    events = h.do(Abandon("c1"))  # hung up while hearing the callback menu
    assert any(isinstance(e, CallerLeft) and e.result.kind is QueueOutcomeKind.ABANDONED for e in events)
    assert "c1" not in h.core.callers


def test_a_second_leg_end_report_is_a_lost_race_not_an_error(simple: AcdConfig) -> None:
    h = Harness(simple)
    h.login("a1")
    h.enqueue("c1")
    h.do(Abandon("c1"))
    (rejected,) = h.do(Abandon("c1"))
    assert isinstance(rejected, CommandRejected) and rejected.reason is RejectReason.UNKNOWN_CALL


async def test_abandon_returns_the_offers_to_cancel_and_the_ticket_hands_out_none() -> None:
    clock = FakeClock()
    async with Acd(RING_ALL, MemoryBackend(), clock) as acd:
        for a in ("a1", "a2", "a3"):
            await acd.controls.login(a, f"sip:{a}@x")
        ticket = await acd.enqueue(QueueRequest("general", priority=3), "c1")
        ring = await ticket.wait_for_offer()
        assert isinstance(ring, tuple) and len(ring) == 3
        to_cancel = await acd.abandon("c1")
        assert sorted(o.offer_id for o in to_cancel) == sorted(o.offer_id for o in ring)
        assert ticket.leg_ended
        result = await ticket.wait_for_offer()
        assert not isinstance(result, tuple) and result.kind is QueueOutcomeKind.ABANDONED
        for offer in ring:  # the engine's cancelled rings report back: no miss, no new INVITE
            await acd.ring_failed(offer)
        await run_clock(clock, 120.0, acd)
        assert not acd.core.offers
        assert all(acd.agent(a).calls_missed == 0 and acd.agent(a).state is AgentState.IDLE for a in ("a1", "a2", "a3"))


async def test_abandon_of_a_bridged_caller_ends_the_agents_call_and_returns_nothing(simple: AcdConfig) -> None:
    async with Acd(simple, MemoryBackend(), FakeClock()) as acd:
        await acd.controls.login("a1", "sip:a1@x")
        ticket = await acd.enqueue(QueueRequest("general"), "c1")
        (offer,) = await ticket.wait_for_offer()
        assert await acd.ring_answered(offer)
        assert await acd.abandon("c1") == ()
        assert acd.agent("a1").state is not AgentState.IN_CALL


@pytest.mark.parametrize("call_id", ["never-queued"])
async def test_abandon_of_an_unknown_call_is_ignored(simple: AcdConfig, call_id: str) -> None:
    async with Acd(simple, MemoryBackend(), FakeClock()) as acd:
        assert await acd.abandon(call_id) == ()
