"""Two of our user agents on loopback sockets (and a raw socket for bad bytes): REFER, glare, 488, 481."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from ivr.call import CallEnded
from ivr.sip.authorize import Credentials
from ivr.sip.events import ByeReceived, ReferReceived, TransferNotified
from ivr.sipua.calls import CallFailed, IncomingCall
from ivr.sipua.leg import CallLeg, ReinviteFailed
from ivr.sipua.registration import RegistrationFailed
from ivr.testing.sipharness import Harness, start

pytestmark = pytest.mark.integration

OFFER = (
    b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=sendrecv\r\n"
)


@pytest.fixture
async def caller() -> AsyncIterator[Harness]:
    h = await start("127.0.0.1", 0)
    try:
        yield h
    finally:
        await h.close()


async def connect(caller: Harness, callee: Harness, number: str = "100") -> tuple[CallLeg, CallLeg]:
    """Caller's leg and callee's leg of one answered call."""
    call = caller.ua.invite(f"sip:{number}@127.0.0.1:{callee.port}", OFFER)
    async with asyncio.timeout(5):
        ours = await call.answered()
        record = await callee.app.answered.get()
    assert record.leg is not None
    return ours, record.leg


@pytest.mark.parametrize(("status", "reason", "accepted"), [(200, "OK", True), (486, "Busy Here", False)],
                         ids=["transferred", "target-busy"])
async def test_blind_transfer_refer_notify_round_trip(caller: Harness, harness: Harness, status: int,
                                                      reason: str, accepted: bool) -> None:
    ours, theirs = await connect(caller, harness)
    transfer = asyncio.ensure_future(ours.refer("sip:agent7@127.0.0.1:5099"))
    async with asyncio.timeout(5):
        # the far application sees the REFER as an event ...
        event = await _next_of(harness, ReferReceived)
        assert isinstance(event, ReferReceived) and event.refer_to == "sip:agent7@127.0.0.1:5099"
        assert event.referred_by is not None
        # ... places the new call and reports the outcome with NOTIFY message/sipfrag
        await theirs.notify_refer(status, reason)
        result = await transfer
    assert (result.accepted, result.status) == (accepted, status)
    notified = [e for e in ours.pending_events() if isinstance(e, TransferNotified)]
    assert [(e.status, e.final) for e in notified] == [(100, False), (status, True)]
    await ours.bye()


async def _next_of(harness: Harness, kind: type) -> object:
    """The next dialog event of type `kind` that the far application received."""
    while True:
        _, event = await harness.app.events.get()
        if isinstance(event, kind):
            return event


async def test_hold_and_unhold_mirror_the_direction(caller: Harness, harness: Harness) -> None:
    ours, theirs = await connect(caller, harness)
    async with asyncio.timeout(5):
        answer = await ours.hold()
        assert b"a=recvonly" in answer
        answer = await ours.unhold()
        assert b"a=sendrecv" in answer
    await ours.bye()


async def test_reinvite_glare_gets_491_and_is_retried(caller: Harness, harness: Harness) -> None:
    ours, theirs = await connect(caller, harness)
    async with asyncio.timeout(10):
        both = await asyncio.gather(ours.hold(), theirs.hold(), return_exceptions=True)
    # one side won at once; the other got 491, backed off (RFC 3261 14.1) and succeeded on its retry
    assert all(isinstance(answer, bytes) for answer in both), both
    await ours.bye()


async def test_bad_sdp_in_reinvite_gets_488_and_the_call_goes_on(caller: Harness, harness: Harness) -> None:
    ours, theirs = await connect(caller, harness)
    theirs.offer_handler = harness.app.answer_sdp
    video_only = OFFER.replace(b"m=audio 41000 RTP/AVP 0 101", b"m=video 41000 RTP/AVP 96")
    with pytest.raises(ReinviteFailed) as info:
        async with asyncio.timeout(5):
            await ours.reinvite(video_only)
    assert info.value.status == 488
    assert not ours.ended and not theirs.ended
    await ours.bye()


async def test_initial_invite_without_common_codec_gets_488(caller: Harness, harness: Harness) -> None:
    g729 = OFFER.replace(b"RTP/AVP 0 101", b"RTP/AVP 18").replace(b"a=rtpmap:0 PCMU/8000\r\n", b"")
    call = caller.ua.invite(f"sip:100@127.0.0.1:{harness.port}", g729)
    with pytest.raises(CallFailed) as info:
        async with asyncio.timeout(5):
            await call.answered()
    assert info.value.status == 488


async def test_outgoing_cancel_gets_487(caller: Harness, harness: Harness) -> None:
    call = caller.ua.invite(f"sip:slow1@127.0.0.1:{harness.port}", OFFER)
    async with asyncio.timeout(5):
        await call.ringing.wait()
        await call.cancel()
        record = await harness.app.finished.get()
    assert call.final_status == 487
    assert record.cancelled and not record.answered


@pytest.mark.parametrize(
    ("method", "to_tag", "extra", "status"),
    [
        ("BYE", ";tag=nosuch", "", "481"),
        ("INFO", "", "", "481"),
        ("MESSAGE", "", "", "405"),
        ("INVITE", "", "Contact: <sip:x@127.0.0.1>\r\nRequire: 100rel\r\n", "420"),
        ("INVITE", "", "Contact: <sip:x@127.0.0.1>\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 2\r\n\r\nhi", "415"),
    ],
    ids=["bye-unknown-dialog", "info-outside-dialog", "unknown-method", "unsupported-require", "not-sdp"],
)
async def test_requests_we_cannot_take_get_the_right_status(harness: Harness, method: str, to_tag: str,
                                                            extra: str, status: str) -> None:
    head = (
        f"{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{{port}};branch=z9hG4bK-raw1\r\n"
        f"From: <sip:x@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>{to_tag}\r\nCall-ID: ghost\r\n"
        f"CSeq: 2 {method}\r\nMax-Forwards: 70\r\n"
    )
    message = head + extra if "Content-Length" in extra else head + extra + "Content-Length: 0\r\n\r\n"
    reply = await _raw_exchange(harness.port, message)
    assert reply.split(" ", 2)[1] == status, reply
    if status == "420":
        assert "Unsupported: 100rel" in reply


async def test_malformed_request_gets_400_with_the_reason_and_the_ua_carries_on(caller: Harness,
                                                                               harness: Harness) -> None:
    reply = await _raw_exchange(harness.port, (
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-raw2\r\n"
        "From: <sip:x@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: bad1\r\n"
        "CSeq: abc INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ))
    status_line = reply.split("\r\n", 1)[0]
    assert status_line.startswith("SIP/2.0 400 ") and "CSeq" in status_line
    ours, _ = await connect(caller, harness)  # still serving
    await ours.bye()


async def test_peer_hangup_ends_the_leg_and_next_event_raises(caller: Harness, harness: Harness) -> None:
    ours, theirs = await connect(caller, harness)
    await ours.bye()
    async with asyncio.timeout(5):
        assert await theirs.wait_ended() == "remote_bye"
        record = await harness.app.finished.get()  # the echo application took the events
        assert isinstance(record.events[-1], ByeReceived)
        with pytest.raises(CallEnded):
            await theirs.next_event()


async def test_application_leaving_an_answered_call_hangs_it_up(caller: Harness) -> None:
    quick = await start("127.0.0.1", 0)

    async def answer_and_leave(call: IncomingCall) -> None:
        call.answer(quick.app.answer_sdp(call.offer))

    quick.ua.on_incoming_call = answer_and_leave
    try:
        call = caller.ua.invite(f"sip:100@127.0.0.1:{quick.port}", OFFER)
        async with asyncio.timeout(5):
            leg = await call.answered()
            assert await leg.wait_ended() == "remote_bye"
    finally:
        await quick.close()


async def _raw_exchange(port: int, template: str) -> str:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        data = template.format(port=sock.getsockname()[1]).encode()
        await loop.sock_sendto(sock, data, ("127.0.0.1", port))
        async with asyncio.timeout(3):
            while True:
                reply = (await loop.sock_recv(sock, 65535)).decode()
                if not reply.startswith("SIP/2.0 100"):
                    return reply
    finally:
        sock.close()


async def test_agent_registers_with_digest_and_is_called_at_its_contact(caller: Harness,
                                                                        harness: Harness) -> None:
    assert harness.registrar is not None
    registration = caller.ua.registration(f"sip:127.0.0.1:{harness.port}", Credentials("agent7", "s3cret"),
                                          expires_s=10)
    async with asyncio.timeout(5):
        granted = await registration.start()  # 10 s is too brief: 423, retried with Min-Expires (60)
    assert granted == 60
    (binding,) = harness.registrar.lookup("agent7", harness.ua.clock.now())
    assert binding.contact.port == caller.port
    # the engine calls the agent by name; the registrar routes it to the agent's UA
    call = harness.ua.invite("sip:agent7@127.0.0.1", OFFER, headers=[("X-IVR-Intent", "claims")])
    async with asyncio.timeout(5):
        leg = await call.answered()
        record = await caller.app.answered.get()
    assert record.dialed == "agent7"
    await leg.bye()
    async with asyncio.timeout(5):
        await registration.stop()
    assert harness.registrar.lookup("agent7", harness.ua.clock.now()) == []
    assert not registration.registered


async def test_registration_with_wrong_password_fails(caller: Harness, harness: Harness) -> None:
    registration = caller.ua.registration(f"sip:127.0.0.1:{harness.port}", Credentials("agent7", "nope"))
    with pytest.raises(RegistrationFailed) as info:
        async with asyncio.timeout(5):
            await registration.start()
    assert info.value.status == 401
