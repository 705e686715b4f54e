"""Session timers (RFC 4028) between two user agents over a `MemoryNetwork` on a `FakeClock`: the refresher
refreshes at half the interval, a session whose refreshes stop ends with BYE at the interval minus 32 s, a
refresh nobody answers ends it too, a 422 is retried once; no socket, no waiting."""

from __future__ import annotations

import asyncio

from ivr.sip.sessiontimer import Negotiated, TimerPolicy
from ivr.sipua.leg import CallLeg
from ivr.testing.sipharness import CallLog, Harness
from tests.unit.sip.test_useragent_memory import OFFER, settle, two_phones


async def _call(caller: Harness, callee: Harness, dialed: str = "100") -> tuple[CallLeg, CallLog]:
    call = caller.ua.invite(f"sip:{dialed}@10.0.0.9:5060", OFFER)
    await settle()
    leg = await asyncio.wait_for(call.answered(), 1)  # the wait_for only guards a broken test
    record = callee.app.answered.get_nowait()
    assert record.leg is not None
    return leg, record


async def test_the_callee_refreshes_by_update_at_half_the_interval_and_the_call_stays_up() -> None:
    clock, _, caller, callee = two_phones()
    leg, record = await _call(caller, callee)
    assert record.leg is not None
    # Our INVITE offered timers and left the refresher open: the callee (UAS) took it.
    assert leg.session.negotiated == Negotiated(1800, we_refresh=False)
    assert record.leg.session.negotiated == Negotiated(1800, we_refresh=True)
    assert record.leg.session.peer_allows_update, "the INVITE listed UPDATE in Allow"
    for _ in range(3):
        await clock.advance(900.0)
        await settle()
    assert record.leg.session.refreshes_sent == 3
    assert not leg.ended and not record.leg.ended
    await leg.bye()


async def test_a_session_whose_refreshes_stop_ends_with_bye_at_the_interval_minus_32_s() -> None:
    clock, _, caller, callee = two_phones()
    leg, record = await _call(caller, callee)
    assert record.leg is not None
    record.leg.session.stop()  # the callee's phone stops refreshing (crashed, NAT binding lost...)
    await clock.advance(1767.9)
    await settle()
    assert not leg.ended
    await clock.advance(0.1)
    await settle()
    assert leg.end_reason == "session_expired"
    finished = await asyncio.wait_for(callee.app.finished.get(), 1)
    assert finished.end_reason == "remote_bye", "the peer got our BYE"


async def test_a_refresh_nobody_answers_ends_the_session() -> None:
    clock, _, caller, callee = two_phones()
    leg, record = await _call(caller, callee)
    assert record.leg is not None
    caller.transport.set_handler(lambda event: None)  # the caller's phone hangs: it answers nothing more
    await clock.advance(900.0)
    await settle()
    assert not record.leg.ended
    await clock.advance(32.0)  # Timer F: the UPDATE times out, 408
    await settle()
    assert record.leg.end_reason == "session_expired"


async def test_a_422_is_retried_once_with_the_callee_min_se() -> None:
    clock, _, caller, callee = two_phones()
    strict = TimerPolicy(session_expires_s=7200, min_se_s=3600)
    callee.ua.core.session_timer = strict
    callee.ua.endpoint.admission.session_timer = strict
    leg, record = await _call(caller, callee)
    assert leg.session.negotiated == Negotiated(3600, we_refresh=False)
    assert record.leg is not None and record.leg.session.negotiated == Negotiated(3600, we_refresh=True)
    await leg.bye()


async def test_a_refresh_refused_422_is_sent_again_once_with_the_peer_min_se() -> None:
    clock, _, caller, callee = two_phones()
    leg, record = await _call(caller, callee)
    assert record.leg is not None
    leg.session.policy = TimerPolicy(session_expires_s=7200, min_se_s=3600)  # the caller's floor rose mid-call
    await clock.advance(900.0)
    await settle()
    assert record.leg.session.refreshes_sent == 1
    assert record.leg.session.negotiated == Negotiated(3600, we_refresh=True)
    assert leg.session.negotiated == Negotiated(3600, we_refresh=False)
    assert not leg.ended and not record.leg.ended
    await leg.bye()


async def test_an_ended_leg_is_not_held_by_its_session_timer() -> None:
    """The refresher holds the leg's methods while the dialog lives; once it ends it lets go, so the leg and its
    refresher are freed by reference counting instead of waiting in a cycle for the garbage collector."""
    _, _, caller, callee = two_phones()
    leg, _ = await _call(caller, callee)
    await leg.bye()
    await settle()
    assert leg.ended
    for name, value in vars(leg.session).items():
        assert getattr(value, "__self__", None) is not leg, f"{name} is still a method of the ended leg"
        cells = getattr(value, "__closure__", None) or ()
        assert all(cell.cell_contents is not leg for cell in cells), f"{name} still closes over the ended leg"
