"""The async user agent over a `MemoryNetwork` on a `FakeClock`: whole calls with no socket and no waiting.

This is the recipe the engine's whole-call test follows (see /work/notes/CONTRACTS.md, SIP entries).
"""

from __future__ import annotations

import asyncio

import pytest

from ivr.call import CallEnded
from ivr.clock import FakeClock
from ivr.sip.events import ByeReceived
from ivr.sip.message import Request
from ivr.sip.parser import parse_message
from ivr.sip.registrar import Binding
from ivr.sip.uri import SipUri
from ivr.sipua.calls import CallFailed
from ivr.sipua.useragent import BYE_WAIT_S
from ivr.testing.sipharness import Harness, MemoryNetwork, attach_harness

OFFER = (
    b"v=0\r\no=caller 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
CALLER, CALLEE = ("10.0.0.5", 5060), ("10.0.0.9", 5060)


def two_phones() -> tuple[FakeClock, MemoryNetwork, Harness, Harness]:
    """A fake clock, a network on it, and the echo application at CALLER and at CALLEE."""
    clock = FakeClock()
    network = MemoryNetwork(clock)
    return clock, network, attach_harness(network, CALLER), attach_harness(network, CALLEE)


async def settle() -> None:
    """Let the loop run what the network queued (deliveries are call_soon; nothing waits on time)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_invite_answer_bye_between_two_user_agents_on_a_fake_clock() -> None:
    clock, network, caller, callee = two_phones()
    call = caller.ua.invite("sip:100@10.0.0.9:5060", OFFER)
    await settle()
    leg = await asyncio.wait_for(call.answered(), 1)  # the wait_for only guards a broken test
    record = callee.app.answered.get_nowait()
    assert record.leg is not None and b"m=audio" in leg.remote_sdp
    await clock.advance(5.0)  # the ACK arrived: no 2xx retransmission, nothing times out
    assert not leg.ended and not record.leg.ended
    await leg.bye()
    await settle()
    finished = callee.app.finished.get_nowait()
    assert [type(e) for e in finished.events] == [ByeReceived] and finished.end_reason == "remote_bye"
    assert callee.ua.endpoint.admission.active_calls == 0 and network.unrouted == []


async def test_closing_waits_for_a_vanished_peers_bye_answer_only_a_few_seconds() -> None:
    clock, network, caller, callee = two_phones()
    call = caller.ua.invite("sip:100@10.0.0.9:5060", OFFER)
    await settle()
    leg = await asyncio.wait_for(call.answered(), 1)
    await clock.advance(1.0)
    network.vanish(CALLEE)  # the callee's host is gone: the BYE will never be answered
    closing = asyncio.ensure_future(caller.ua.close())
    await settle()
    assert leg.ended and not closing.done()
    await clock.advance(BYE_WAIT_S - 0.1)
    assert not closing.done()
    await clock.advance(0.2)
    await settle()
    assert closing.done() and closing.exception() is None  # not Timer F's 32 s
    assert any(data.startswith(b"BYE ") for data, _ in network.unrouted)
    gone = asyncio.ensure_future(callee.ua.close())  # the vanished side's own user agent, for the loop's sake
    await settle()
    await clock.advance(BYE_WAIT_S)
    await asyncio.wait_for(gone, 1)


async def test_timer_b_fires_on_the_fake_clock_for_an_unreachable_callee() -> None:
    clock = FakeClock()
    network = MemoryNetwork(clock)
    caller = attach_harness(network, CALLER)
    call = caller.ua.invite("sip:100@10.0.0.77:5060", OFFER)
    await settle()
    assert len(network.unrouted) == 1
    await clock.advance(3.5)
    assert len(network.unrouted) == 4  # Timer A: retransmitted at 0.5, 1.5 and 3.5 s
    await clock.advance(32.0)
    await settle()
    with pytest.raises(CallFailed) as failed:
        await asyncio.wait_for(call.answered(), 1)
    assert failed.value.status == 408


async def test_caller_cancel_while_ringing_gets_487_on_a_fake_clock() -> None:
    clock, network, caller, callee = two_phones()
    call = caller.ua.invite("sip:slow1@10.0.0.9:5060", OFFER)
    await settle()
    assert call.ringing.is_set()
    await call.cancel()
    await settle()
    record = callee.app.finished.get_nowait()
    assert record.cancelled and not record.answered
    assert call.final_status == 487


PROXY = ("10.0.0.1", 5060)


async def test_an_agent_registered_through_a_proxy_is_invited_through_its_path() -> None:
    clock = FakeClock()
    network = MemoryNetwork(clock)
    engine = attach_harness(network, CALLER, users={"agent7": "s3cret"})
    proxy = network.transport(PROXY)  # a bare endpoint playing the proxy: we only look at what reaches it
    seen: list[bytes] = []
    proxy.deliver = lambda data, source: seen.append(data)  # type: ignore[method-assign]
    assert engine.registrar is not None
    binding = Binding("agent7", SipUri.parse("sip:agent7@192.168.1.20:5062"), 3600.0, "reg", 1,
                      ("<sip:10.0.0.1:5060;lr>",))
    engine.registrar._bindings["agent7"] = {str(binding.contact): binding}
    engine.ua.invite("sip:agent7@192.168.1.20:5062", OFFER)
    await settle()
    (data,) = seen
    invite = parse_message(data)
    assert isinstance(invite, Request)
    assert str(invite.uri) == "sip:agent7@192.168.1.20:5062"  # loose routing: the contact stays the R-URI
    assert invite.headers.get_all("Route") == ["<sip:10.0.0.1:5060;lr>"]


async def test_an_explicit_route_sends_the_invite_to_its_first_hop() -> None:
    clock = FakeClock()
    network = MemoryNetwork(clock)
    engine = attach_harness(network, CALLER)
    engine.ua.invite("sip:100@10.0.0.9:5060", OFFER, route=["<sip:10.0.0.77;lr>", "<sip:10.0.0.78;lr>"])
    await settle()
    ((data, destination),) = network.unrouted
    assert destination == ("10.0.0.77", 5060)
    assert parse_message(data).headers.get_all("Route") == ["<sip:10.0.0.77;lr>", "<sip:10.0.0.78;lr>"]


async def test_confirmed_returns_on_the_ack_and_raises_when_no_ack_comes() -> None:
    clock, network, caller, callee = two_phones()
    call = caller.ua.invite("sip:100@10.0.0.9:5060", OFFER)
    await settle()
    ours = await asyncio.wait_for(call.answered(), 1)
    await asyncio.wait_for(ours.confirmed(), 1)  # a call we placed: confirmed by its 2xx
    theirs = callee.app.answered.get_nowait().leg
    assert theirs is not None
    await asyncio.wait_for(theirs.confirmed(), 1)  # the ACK has arrived
    await ours.bye()
    await settle()

    network.unrouted.clear()
    silent = network.transport(("10.0.0.66", 5060))  # a caller that never ACKs
    silent.deliver = lambda data, source: None  # type: ignore[method-assign]
    invite = (
        "INVITE sip:100@10.0.0.9:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bK-noack\r\n"
        "From: <sip:x@10.0.0.66>;tag=n1\r\nTo: <sip:100@10.0.0.9>\r\nCall-ID: noack@x\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:x@10.0.0.66:5060>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(OFFER)}\r\n\r\n"
    ).encode() + OFFER
    network.inject(invite, ("10.0.0.66", 5060), CALLEE)
    await settle()
    leg = callee.app.answered.get_nowait().leg
    assert leg is not None
    waiting = asyncio.ensure_future(leg.confirmed())
    await clock.advance(33.0)  # 64*T1 without an ACK: the endpoint sends BYE and ends the dialog
    await settle()
    with pytest.raises(CallEnded):
        await asyncio.wait_for(waiting, 1)
    assert leg.end_reason == "no_ack"
