"""The queue handoff on a FakeClock: a real ACD (memory backend), fake legs and a fake dialer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from engine_fakes import FakeLeg, Rig, handoff_rig, one_agent_acd_config

from ivr.call import CallEnded, QueueOutcomeKind, QueueRequest
from ivr.engine.events import AgentBridged, CallQueued, QueueLeft

AGENT_URI = "sip:a1@10.0.0.1"


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with handoff_rig(one_agent_acd_config()) as rig:
        yield rig


async def agent_on_break(rig: Rig) -> None:
    """Logged in (so callers wait) but on a break (so nobody is offered yet)."""
    await rig.acd.controls.login("a1", AGENT_URI)
    await rig.acd.controls.pause("a1")


def request() -> QueueRequest:
    return QueueRequest("general", context={"intent": "claims", "transcript": "my car was hit"})


async def test_the_first_agent_to_answer_is_bridged_with_the_context_in_x_ivr_headers(rig: Rig) -> None:
    rig.dialer.answer_after_s[AGENT_URI] = 3.0
    await rig.acd.controls.login("a1", AGENT_URI)
    caller = FakeLeg("c1", rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="13800000000"))
    while caller.bridged_to is None:
        await rig.clock.sleep(0.5)
    (dialled,) = rig.dialer.dialled
    assert dialled.headers["X-IVR-Call-ID"] == "c1"
    assert dialled.headers["X-IVR-Queue"] == "general"
    assert dialled.headers["X-IVR-Transcript"] == "my%20car%20was%20hit"
    assert caller.bridged_to is dialled.leg and not caller.held
    await rig.clock.sleep(60.0)
    assert dialled.leg is not None
    dialled.leg.hang_up_by_party()  # the agent ends the call
    result = await serving
    assert result.kind is QueueOutcomeKind.ANSWERED and result.agent_id == "a1"
    assert dialled.leg.closed and caller.bridged_to is None
    assert [type(e) for e in rig.events] == [CallQueued, AgentBridged, QueueLeft]
    assert rig.acd.agent("a1").calls_missed == 0


async def test_a_caller_who_hangs_up_while_the_agent_rings_cancels_the_ring_at_once(rig: Rig) -> None:
    await rig.acd.controls.login("a1", AGENT_URI)  # the agent's phone never answers
    caller = FakeLeg("c1", rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="13800000000"))
    while not rig.dialer.dialled:
        await rig.clock.sleep(0.1)
    await rig.clock.sleep(3.0)
    caller.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving
    (dialled,) = rig.dialer.dialled
    assert dialled.cancelled_at is not None and caller.ended_at is not None
    assert dialled.cancelled_at - caller.ended_at < 1.0
    await rig.clock.sleep(120.0)  # long past the ring timeout and the ACD's retry: no new offer
    assert len(rig.dialer.dialled) == 1
    agent = rig.acd.agent("a1")
    assert agent.calls_missed == 0
    assert agent.state.value == "idle"


async def test_a_caller_gone_before_an_agent_is_free_is_never_offered(rig: Rig) -> None:
    await agent_on_break(rig)
    caller = FakeLeg("c1", rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="13800000000"))
    await rig.clock.sleep(1.0)
    caller.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving
    await rig.acd.controls.resume("a1")
    await rig.clock.sleep(60.0)
    assert rig.dialer.dialled == []
    assert rig.acd.agent("a1").state.value == "idle"


async def test_key_1_while_waiting_leaves_a_callback_and_the_key_is_not_type_ahead(rig: Rig) -> None:
    await agent_on_break(rig)
    caller = FakeLeg("c1", rig.clock)
    caller.press("5")  # pressed before the queue: for the flow's menu, not for the queue
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="13800000000"))
    await rig.clock.sleep(1.0)
    caller.press("1")
    await rig.clock.sleep(3.0)  # the number read back (test_callback.py: the whole dialogue)
    caller.press("1")
    result = await serving
    assert result.kind is QueueOutcomeKind.CALLBACK and result.callback_number == "13800000000"
    assert caller.played == ["callback_confirm", "callback_saved"]
    assert caller.typeahead == []


async def test_the_waiting_caller_hears_the_position_every_announce_period(rig: Rig) -> None:
    await agent_on_break(rig)
    caller = FakeLeg("c1", rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="13800000000"))
    await rig.clock.sleep(65.0)
    assert caller.played == ["queue_position", "queue_position"]
    assert caller.held
    caller.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving
    assert not caller.held


async def test_a_callback_to_a_number_the_rules_refuse_is_not_taken_and_the_caller_stays_queued(rig: Rig) -> None:
    await agent_on_break(rig)
    caller = FakeLeg("c1", rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(caller, request(), caller="+1 900 555 0100"))
    await rig.clock.sleep(1.0)
    caller.press("1")
    await rig.clock.sleep(15.0)  # not read back: the caller is asked for a number, keys none, goes back
    assert not serving.done() and caller.played == ["callback_enter_number"] and caller.held
    caller.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving
