"""SRTP media (ivr.rtp.srtp) and SDES negotiation (ivr.sip.sdes): keys from SDP, audio both ways
encrypted on a driven clock and an in-memory network, strangers' and tampered packets dropped."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from ivr.clock import FakeClock
from ivr.media.g711 import PCMU
from ivr.media.tones import tone
from ivr.rtp import MediaEngine, MediaParams, MediaSession, PlayOutcome, RtpPacket, SrtpKeys
from ivr.rtp.address import Address
from ivr.rtp.health import MediaCounters
from ivr.rtp.net import ErrorListener, LostListener, Receiver
from ivr.rtp.srtp import SecuredPort, SrtpTransform
from ivr.sip.errors import SdpNegotiationError
from ivr.sip.sdes import CryptoAttribute, SrtpPolicy, answer_sdes
from ivr.sip.sdp import SessionDescription, answer_offer
from ivr.testing.rtpprobe import MediaProbe, MemoryNetwork, dominant_frequency_hz

KEY_A, KEY_B = bytes(range(30)), bytes(range(100, 130))


def offer_sdp(proto: str = "RTP/SAVP", *cryptos: str) -> SessionDescription:
    lines = ["v=0", "o=phone 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=audio 4000 {proto} 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
             *(f"a=crypto:{c}" for c in cryptos), "a=sendrecv"]
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


def inline(key: bytes) -> str:
    return "inline:" + base64.b64encode(key).decode()


def answer_to(offer: SessionDescription) -> SessionDescription:
    return answer_offer(offer, local_address="127.0.0.1", local_port=5000, session_id=1)


# -- SDES -------------------------------------------------------------------------------------------


def test_an_srtp_offer_is_answered_with_the_same_tag_and_suite_and_a_fresh_key_of_ours() -> None:
    offer = offer_sdp("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_32 {inline(KEY_A)}",
                      f"2 AES_CM_128_HMAC_SHA1_80 {inline(KEY_B)}")
    answer = answer_to(offer)
    agreed = answer_sdes(offer, answer, SrtpPolicy.OPTIONAL)
    assert agreed is not None and agreed.suite == "AES_CM_128_HMAC_SHA1_32" and agreed.remote_key == KEY_A
    text = answer.serialize().decode()
    assert "m=audio 5000 RTP/SAVP 0 101" in text
    (crypto,) = [line for line in text.splitlines() if line.startswith("a=crypto:")]
    ours = CryptoAttribute.parse(crypto.removeprefix("a=crypto:"))
    assert ours is not None and (ours.tag, ours.suite, ours.key) == (1, "AES_CM_128_HMAC_SHA1_32", agreed.local_key)
    assert len(agreed.local_key) == 30 and agreed.local_key not in (KEY_A, KEY_B)
    assert "inline" not in repr(agreed) and "inline" not in repr(SrtpKeys(agreed.suite, KEY_A, KEY_B))


@pytest.mark.parametrize(("proto", "policy", "expected"), [
    ("RTP/AVP", SrtpPolicy.OFF, None), ("RTP/AVP", SrtpPolicy.OPTIONAL, None),
    ("RTP/AVP", SrtpPolicy.REQUIRED, "encryption required"), ("RTP/SAVP", SrtpPolicy.OFF, "SRTP is off"),
])
def test_policy_decides_between_plain_and_secure_offers(proto: str, policy: SrtpPolicy, expected: str | None) -> None:
    offer = offer_sdp(proto, f"1 AES_CM_128_HMAC_SHA1_80 {inline(KEY_A)}")
    answer = answer_to(offer)
    if expected is None:
        assert answer_sdes(offer, answer, policy) is None
        assert "a=crypto" not in answer.serialize().decode()
    else:
        with pytest.raises(SdpNegotiationError, match=expected):
            answer_sdes(offer, answer, policy)


@pytest.mark.parametrize("crypto", [
    f"1 AES_256_CM_HMAC_SHA1_80 {inline(bytes(range(46)))}",  # a suite we do not take
    f"1 AES_CM_128_HMAC_SHA1_80 {inline(KEY_A)}|2^20|1:4",  # an MKI
    f"1 AES_CM_128_HMAC_SHA1_80 {inline(KEY_A[:20])}",  # a short key
    f"1 AES_CM_128_HMAC_SHA1_80 {inline(KEY_A)} UNENCRYPTED_SRTP",  # session parameters
    "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
])
def test_an_srtp_offer_with_nothing_we_take_is_refused(crypto: str) -> None:
    offer = offer_sdp("RTP/SAVP", crypto)
    with pytest.raises(SdpNegotiationError, match="no SRTP crypto suite in common"):
        answer_sdes(offer, answer_to(offer), SrtpPolicy.REQUIRED)


# -- the transform ----------------------------------------------------------------------------------


def test_protected_packets_decrypt_once_on_the_other_side_and_tampering_is_refused() -> None:
    ours = SrtpTransform(SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_A, KEY_B))
    theirs = SrtpTransform(SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_B, KEY_A))
    plain = RtpPacket(0, 7, 1120, 0x1234, b"\x55" * 160).serialize()
    wire = ours.protect(plain)
    assert len(wire) == len(plain) + 10 and wire[12:172] != plain[12:172]  # encrypted payload, 80-bit tag
    assert theirs.unprotect(wire) == plain
    assert theirs.unprotect(wire) is None  # a replay
    tampered = bytearray(ours.protect(RtpPacket(0, 8, 1280, 0x1234, b"\x55" * 160).serialize()))
    tampered[20] ^= 1
    assert theirs.unprotect(bytes(tampered)) is None
    rtcp = bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big")  # an empty receiver report
    assert theirs.unprotect(ours.protect(rtcp)) == rtcp


class WiredPort:
    """A socket stand-in: what is attached to it, and what is sent through it."""

    def __init__(self) -> None:
        self.receiver: Receiver | None = None
        self.sent: list[bytes] = []

    def attach(self, receiver: Receiver, on_error: ErrorListener, on_lost: LostListener) -> None:
        self.receiver = receiver

    def sendto(self, data: bytes, address: Address) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.receiver = None


def test_a_plain_port_is_not_in_the_way_and_keys_put_the_transform_between_socket_and_session() -> None:
    inner, counters = WiredPort(), MediaCounters()
    port = SecuredPort(inner, counters)
    heard: list[bytes] = []

    def session(data: bytes, source: Address) -> None:
        heard.append(data)

    port.attach(session, lambda exc: None, lambda: None)
    assert inner.receiver is session and port.sendto == inner.sendto  # plain: nothing of ours per packet
    theirs = SrtpTransform(SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_B, KEY_A))
    packets = [RtpPacket(0, seq, seq * 160, 0x51, PCMU.silence()).serialize() for seq in range(1, 5)]
    port.secure(SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_A, KEY_B))
    assert inner.receiver is not session and inner.receiver is not None
    port.sendto(packets[0], ("127.0.0.1", 4000))
    assert inner.sent[-1] != packets[0] and theirs.unprotect(inner.sent[-1]) == packets[0]
    inner.receiver(theirs.protect(packets[1]), ("127.0.0.1", 4000))
    inner.receiver(packets[2], ("127.0.0.1", 4000))  # plain RTP while keys are set: refused
    assert heard == [packets[1]] and counters.srtp_rejected == 1
    port.secure(None)
    assert inner.receiver is session and port.sendto == inner.sendto
    port.sendto(packets[3], ("127.0.0.1", 4000))
    assert inner.sent[-1] == packets[3]


# -- sessions ---------------------------------------------------------------------------------------


async def secure_pair(engine: MediaEngine, their_key_for_us: bytes = KEY_B) -> tuple[MediaSession, MediaSession]:
    """Our leg and the caller's, both SRTP with mirrored keys (ours protects with A, theirs with B)."""
    ours, caller = await engine.open_session(call_id="ours"), await engine.open_session(call_id="caller")
    ours.start(MediaParams(remote=caller.local, srtp=SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_A, their_key_for_us)))
    caller.start(MediaParams(remote=ours.local, srtp=SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY_B, KEY_A)))
    await asyncio.sleep(0)  # the media clock's first tick is due at once: let it run before time moves
    return ours, caller


def tap(net: MemoryNetwork) -> list[tuple[bytes, Address]]:
    """Every datagram sent on `net` from now on, with its destination."""
    seen: list[tuple[bytes, Address]] = []
    deliver = net.deliver

    def recording(data: bytes, source: Address, destination: Address) -> None:
        seen.append((data, destination))
        deliver(data, source, destination)

    net.deliver = recording  # type: ignore[method-assign]
    return seen


async def test_audio_flows_both_ways_encrypted_on_the_wire(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    ours, caller = await secure_pair(engine)
    wire = tap(net)
    heard_by_us, heard_by_caller = MediaProbe(ours, clock), MediaProbe(caller, clock)
    played = await asyncio.gather(ours.play(tone((1000.0,), 1.0)), caller.play(tone((600.0,), 1.0)),
                                  clock.advance(1.3))
    assert played[0].outcome is PlayOutcome.COMPLETED and played[1].outcome is PlayOutcome.COMPLETED
    assert dominant_frequency_hz(heard_by_caller.audio()) == pytest.approx(1000.0, abs=10.0)
    assert dominant_frequency_hz(heard_by_us.audio()) == pytest.approx(600.0, abs=10.0)
    tone_payload = set(PCMU.encode_frames(tone((1000.0,), 1.0)))
    to_caller = [data for data, dest in wire if dest == caller.local]
    assert len(to_caller) >= 50 and all(len(data) == 12 + 160 + 10 for data in to_caller)
    assert not any(data[12:172] in tone_payload for data in to_caller)  # no plain G.711 on the wire
    assert engine.counters.srtp_rejected == 0


async def test_packets_under_another_key_are_dropped_and_counted_never_played(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    ours, caller = await secure_pair(engine, their_key_for_us=os.urandom(30))  # we expect a key they do not use
    heard_by_us = MediaProbe(ours, clock)
    await asyncio.gather(caller.play(tone((600.0,), 0.5)), clock.advance(0.7))
    net.inject(RtpPacket(0, 1, 160, 0xBAD, b"\x55" * 160).serialize(), caller.local, ours.local)  # plain RTP
    await clock.advance(0.1)
    assert heard_by_us.received_s == 0.0
    assert engine.counters.srtp_rejected >= 26
    assert ours.inbound is not None and ours.inbound.stats.received == 0
