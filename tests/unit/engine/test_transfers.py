"""Agents handing a caller on (blind and attended transfer) through the handoff, on a FakeClock:
a real ACD (memory backend), fake legs and a fake dialer; REFERs arrive as the user agent hands them on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from engine_fakes import FakeLeg, Rig, handoff_rig

from ivr.acd.config import AcdConfig, parse_config
from ivr.acd.figures import TRANSFER_HOLD_REASON
from ivr.call import QueueOutcomeKind, QueueRequest, QueueResult
from ivr.engine.events import AgentBridged, CallEvents
from ivr.engine.transfers import AgentTransfers, Target, TargetKind
from ivr.sip.events import ReferReceived

A1, A2 = "sip:a1@10.0.0.1", "sip:a2@10.0.0.2"


def two_agents() -> AcdConfig:
    return parse_config(
        """
sites:
  - {id: north, region: north, central: true}
agents:
  - {id: a1, sip: {username: a1, password: pw}, site: north, skills: {general: 1}, dialects: [cmn], wrap_up_s: 30}
  - {id: a2, sip: {username: a2, password: pw}, site: north, skills: {claims: 1}, dialects: [cmn], wrap_up_s: 30}
""",
        """
queues:
  - {id: general, skill: general, strategy: longest-idle, ring_timeout_s: 20, announce_every_s: 300}
  - {id: claims, skill: claims, strategy: longest-idle, ring_timeout_s: 20, announce_every_s: 300}
""",
    )


@dataclass
class Notified:
    statuses: list[int] = field(default_factory=list)

    async def __call__(self, status: int, reason: str) -> None:
        self.statuses.append(status)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with handoff_rig(two_agents(), {A1: 1.0, A2: 2.0}, trunk="trunk") as rig:
        await rig.acd.controls.login("a1", A1)
        await rig.acd.controls.login("a2", A2)
        yield rig


async def bridged_to_a1(rig: Rig) -> tuple[FakeLeg, asyncio.Task[QueueResult]]:
    caller = FakeLeg("c1", rig.clock)
    request = QueueRequest("general", dialect="cmn", context={"intent": "claims", "transcript": "car hit"})
    serving = asyncio.create_task(rig.handoff.serve(caller, request, caller="13800000000"))
    while caller.bridged_to is None:
        await rig.clock.sleep(0.5)
    return caller, serving


def refer(rig: Rig, leg: FakeLeg, target: str) -> Notified:
    notified = Notified()
    rig.handoff.transfers.refer_received(leg.call_id, ReferReceived(target, None), notified)
    return notified


async def test_a_blind_transfer_to_an_agent_rings_them_with_the_context_and_releases_the_first(rig: Rig) -> None:
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0]
    assert first.uri == A1 and first.leg is not None
    notified = refer(rig, first.leg, "sip:a2@ivr.example")
    while len(rig.dialer.dialled) < 2 or caller.bridged_to in (None, first.leg):
        await rig.clock.sleep(0.5)
    second = rig.dialer.dialled[1]
    assert second.uri == A2
    assert second.headers["X-IVR-Call-ID"] == "c1" and second.headers["X-IVR-Intent"] == "claims"
    assert second.headers["X-IVR-Transferred-By"] == "a1" and second.headers["X-IVR-Transfer"] == "blind"
    assert notified.statuses == [200]
    assert first.leg.closed
    assert rig.acd.agent("a1").state.value == "wrap_up"
    held = rig.acd.agent("a2")
    assert held.status.value == "paused" and held.pause_reason == TRANSFER_HOLD_REASON  # no queue offers meanwhile
    assert second.leg is not None
    second.leg.hang_up_by_party()
    result = await serving
    assert result.kind is QueueOutcomeKind.ANSWERED and result.agent_id == "a2"
    (link,) = result.transfers
    assert (link.by_agent, link.kind, link.target, link.target_kind, link.status) == ("a1", "blind", "a2", "agent", 200)
    assert rig.acd.agent("a2").status.value == "available"
    assert [e.agent_id for e in rig.events if isinstance(e, AgentBridged)] == ["a1", "a2"]


async def test_a_target_who_does_not_answer_leaves_the_caller_with_the_first_agent(rig: Rig) -> None:
    del rig.dialer.answer_after_s[A2]  # a2's phone never answers
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    notified = refer(rig, first, "sip:a2@ivr")
    await rig.clock.sleep(40.0)  # past the transfer's ring time
    assert notified.statuses == [480]
    assert caller.bridged_to is first and not caller.held and not first.closed
    assert rig.acd.agent("a2").status.value == "available"
    first.hang_up_by_party()
    result = await serving
    assert result.agent_id == "a1" and result.transfers == ()


async def test_a_blind_transfer_to_a_queue_queues_the_caller_again_with_who_sent_them(rig: Rig) -> None:
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    notified = refer(rig, first, "sip:claims@ivr")
    while len(rig.dialer.dialled) < 2 or caller.bridged_to is None or caller.bridged_to is first:
        await rig.clock.sleep(0.5)
    assert notified.statuses == [200] and first.closed
    second = rig.dialer.dialled[1]
    assert second.uri == A2 and second.headers["X-IVR-Queue"] == "claims"
    assert second.headers["X-IVR-Transferred-By"] == "a1" and second.headers["X-IVR-Intent"] == "claims"
    assert second.leg is not None
    caller.hang_up_by_party()
    result = await serving
    assert (result.queue, result.agent_id) == ("claims", "a2")
    assert [(t.kind, t.target, t.target_kind) for t in result.transfers] == [("blind", "claims", "queue")]


async def test_an_unknown_target_is_refused_and_the_call_goes_on(rig: Rig) -> None:
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    notified = refer(rig, first, "sip:nobody@ivr")
    await rig.clock.sleep(1.0)
    assert notified.statuses == [404] and caller.bridged_to is first
    caller.hang_up_by_party()
    await serving


async def test_an_attended_transfer_joins_the_caller_to_the_consulted_agent(rig: Rig) -> None:
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    consult_leg = FakeLeg("consult-1", rig.clock)  # a1's phone called a2 through us
    key = ("consult-1", "our-tag", "a1-tag")
    consulting = asyncio.create_task(rig.handoff.transfers.consult("a1", consult_leg, key,
                                                                   Target(TargetKind.AGENT, "a2")))
    while consult_leg.bridged_to is None:
        await rig.clock.sleep(0.5)
    second = rig.dialer.dialled[1]
    assert second.headers["X-IVR-Call-ID"] == "c1" and second.headers["X-IVR-Consulted-By"] == "a1"
    assert second.headers["X-IVR-Intent"] == "claims"
    wrong = refer(rig, first, "<sip:a2@ivr?Replaces=other%3Bto-tag%3Dour-tag%3Bfrom-tag%3Da1-tag>")
    await rig.clock.sleep(0.5)
    assert wrong.statuses == [481] and caller.bridged_to is first
    notified = refer(rig, first, "<sip:a2@ivr?Replaces=consult-1%3Bto-tag%3Dour-tag%3Bfrom-tag%3Da1-tag>")
    await consulting
    while caller.bridged_to is None or caller.bridged_to is not second.leg:
        await rig.clock.sleep(0.5)
    assert notified.statuses == [200] and first.closed and consult_leg.closed
    assert second.leg is not None and not second.leg.closed
    second.leg.hang_up_by_party()
    result = await serving
    assert result.agent_id == "a2"
    assert [(t.by_agent, t.kind, t.target) for t in result.transfers] == [("a1", "attended", "a2")]
    assert rig.acd.agent("a2").status.value == "available"


async def test_a_refer_on_a_leg_that_is_no_agents_call_is_declined(rig: Rig) -> None:
    notified = Notified()
    rig.handoff.transfers.refer_received("stranger", ReferReceived("sip:a2@ivr", None), notified)
    await rig.clock.sleep(0.1)
    assert notified.statuses == [603]


async def test_a_failed_transfer_after_the_first_agent_left_puts_the_caller_back_in_their_queue(rig: Rig) -> None:
    del rig.dialer.answer_after_s[A2]
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    notified = refer(rig, first, "sip:a2@ivr")
    await rig.clock.sleep(1.0)
    first.hang_up_by_party()  # the phone hangs up as soon as the REFER is accepted
    while len(rig.dialer.dialled) < 3:  # a2 never answers; a1, after wrap-up, is offered the caller again
        await rig.clock.sleep(1.0)
    again = rig.dialer.dialled[2]
    assert again.uri == A1 and again.headers["X-IVR-Transferred-By"] == "a1"
    assert notified.statuses == [480] and not caller.ended
    while caller.bridged_to is None or caller.bridged_to is not again.leg:
        await rig.clock.sleep(0.5)
    caller.hang_up_by_party()
    result = await serving
    assert result.agent_id == "a1"
    assert [(t.kind, t.target, t.status) for t in result.transfers] == [("blind", "a2", 480)]


async def test_a_blind_transfer_to_a_number_dials_it_through_the_trunk_with_the_context(rig: Rig) -> None:
    rig.dialer.answer_after_s["sip:95588@trunk"] = 3.0
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    notified = refer(rig, first, "sip:95588@ivr")
    while len(rig.dialer.dialled) < 2 or caller.bridged_to in (None, first):
        await rig.clock.sleep(0.5)
    outside = rig.dialer.dialled[1]
    assert outside.uri == "sip:95588@trunk" and outside.headers["X-IVR-Intent"] == "claims"
    assert notified.statuses == [200] and rig.acd.agent("a1").state.value == "wrap_up"
    caller.hang_up_by_party()
    result = await serving
    assert [(t.target, t.target_kind) for t in result.transfers] == [("95588", "number")]


async def test_a_number_outside_transfer_numbers_is_refused(rig: Rig) -> None:
    rig.handoff.transfers = AgentTransfers(rig.acd, rig.dialer, CallEvents([rig.events.append]), rig.clock,
                                           lambda number: f"sip:{number}@trunk", (r"95\d{3}",))
    caller, serving = await bridged_to_a1(rig)
    first = rig.dialer.dialled[0].leg
    assert first is not None
    premium = refer(rig, first, "sip:+8616812345678@ivr")
    await rig.clock.sleep(1.0)
    assert premium.statuses == [403] and caller.bridged_to is first and len(rig.dialer.dialled) == 1
    caller.hang_up_by_party()
    await serving
