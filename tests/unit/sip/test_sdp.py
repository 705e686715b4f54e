"""SDP parse/serialize and RFC 3264 offer/answer for G.711 + telephone-event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip.errors import SdpError, SdpNegotiationError
from ivr.sip.sdp import (
    Direction,
    MediaDescription,
    SessionDescription,
    answer_offer,
    make_offer,
    negotiated_codec,
)

OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 18 8 0 96\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
    "m=video 51372 RTP/AVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
)


def answer(sdp: str, **kw: object) -> SessionDescription:
    return answer_offer(
        SessionDescription.parse(sdp), local_address="203.0.113.5", local_port=4000, session_id=7, **kw
    )  # type: ignore[arg-type]


def test_parse_serialize_round_trip() -> None:
    sdp = SessionDescription.parse(OFFER.encode())
    audio, video = sdp.media
    assert (sdp.username, sdp.session_id, sdp.connection_address) == ("alice", "2890844526", "198.51.100.1")
    assert audio.formats == [18, 8, 0, 96] and audio.rtpmap[96] == ("telephone-event", 8000)
    assert (audio.fmtp, audio.ptime_ms, audio.direction) == ({96: "0-16"}, 20, Direction.SENDRECV)
    assert video.port == 51372 and video.codec(31) == ("H261", 90000)
    assert sdp.serialize() == OFFER.encode()


def test_answer_takes_first_supported_codec_of_the_offer_and_rejects_other_streams() -> None:
    ans = answer(OFFER)
    audio, video = ans.media
    assert (audio.port, audio.formats, audio.rtpmap) == (
        4000,
        [8, 96],
        {8: ("PCMA", 8000), 96: ("telephone-event", 8000)},
    )
    assert audio.fmtp == {96: "0-16"} and audio.direction is Direction.SENDRECV
    assert (video.port, video.media, video.formats) == (0, "video", [31])
    assert ans.connection_address == "203.0.113.5" and (ans.session_id, ans.session_version) == ("7", "7")
    assert SessionDescription.parse(ans.serialize()) == ans


def test_our_preference_does_not_override_the_offer_order() -> None:
    ans = answer(OFFER.replace("RTP/AVP 18 8 0 96", "RTP/AVP 0 8 96"), supported=("PCMA", "PCMU"))
    assert ans.media[0].formats[0] == 0


def test_dtmf_can_be_declined() -> None:
    assert answer(OFFER, dtmf=False).media[0].formats == [8]


@pytest.mark.parametrize(
    ("offer_attr", "expected"),
    [
        ("a=sendrecv", Direction.SENDRECV),
        ("a=sendonly", Direction.RECVONLY),
        ("a=recvonly", Direction.SENDONLY),
        ("a=inactive", Direction.INACTIVE),
    ],
)
def test_answer_mirrors_direction(offer_attr: str, expected: Direction) -> None:
    assert answer(OFFER.replace("a=sendrecv", offer_attr)).media[0].direction is expected


def test_session_level_direction_applies_to_streams() -> None:
    sdp = OFFER.replace("a=sendrecv\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert SessionDescription.parse(sdp).direction is Direction.SENDONLY
    assert answer(sdp).media[0].direction is Direction.RECVONLY


def test_old_style_hold_with_zero_address() -> None:
    held = OFFER.replace("c=IN IP4 198.51.100.1", "c=IN IP4 0.0.0.0")
    assert answer(held).media[0].direction is Direction.RECVONLY
    media = negotiated_codec(SessionDescription.parse(held))
    assert media.remote_address == "0.0.0.0" and not media.we_send and media.we_receive


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        (
            OFFER.replace("RTP/AVP 18 8 0 96", "RTP/AVP 18 96"),
            "no common codec: SDP offers G729/8000, telephone-event/8000; we support PCMU, PCMA",
        ),
        (OFFER.replace("m=audio 49170 RTP/AVP", "m=audio 49170 UDP/TLS/RTP/SAVP"), "no usable audio stream in SDP"),
        (OFFER.replace("m=audio 49170", "m=audio 0"), "no usable audio stream in SDP"),
    ],
    ids=["no-common-codec", "dtls-srtp-only", "audio-disabled"],
)
def test_nothing_usable_raises_negotiation_error(sdp: str, reason: str) -> None:
    with pytest.raises(SdpNegotiationError) as info:
        answer(sdp)
    assert str(info.value) == reason and info.value.status_hint == 488


def test_only_the_first_usable_audio_stream_is_accepted() -> None:
    two = OFFER + "m=audio 49180 RTP/AVP 0\r\n"
    assert [m.port for m in answer(two).media] == [4000, 0, 0]


def test_negotiated_codec_from_an_answer() -> None:
    offer = make_offer(local_address="203.0.113.5", local_port=4000, session_id=1)
    remote = answer_offer(offer, local_address="198.51.100.9", local_port=30000, session_id=99)
    media = negotiated_codec(remote)
    assert (media.payload_type, media.codec, media.clock_rate_hz, media.dtmf_payload_type) == (
        0,
        "PCMU",
        8000,
        101,
    )
    assert (media.remote_address, media.remote_port, media.direction, media.ptime_ms) == (
        "198.51.100.9",
        30000,
        Direction.SENDRECV,
        20,
    )
    assert media.we_send and media.we_receive


def test_make_offer() -> None:
    offer = make_offer(
        local_address="203.0.113.5",
        local_port=4000,
        session_id=5,
        codecs=("PCMA",),
        direction=Direction.SENDONLY,
    )
    assert offer.serialize().decode().splitlines() == [
        "v=0",
        "o=- 5 5 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 4000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendonly",
    ]
    with pytest.raises(ValueError, match="codec 'OPUS' has no static payload type"):
        make_offer(local_address="h", local_port=1, session_id=1, codecs=("OPUS",))


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        ("o=x 1 1 IN IP4 h\r\n", "bad SDP: must start with v=0"),
        ("v=0\r\ns=-\r\n", "bad SDP line 2: o= must come right after v="),
        ("v=0\r\no=x 1 IN IP4 h\r\n", "bad SDP line 2: bad o= line 'x 1 IN IP4 h'"),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", "bad SDP line 3: bad port 'x' in m= line"),
        (
            "v=0\r\no=x 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP PCMU\r\n",
            "bad SDP line 3: bad payload type 'PCMU' in m= line",
        ),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nc=IN IP4\r\n", "bad SDP line 3: bad c= line 'IN IP4'"),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nbogus\r\n", "bad SDP line 3: 'bogus' is not type=value"),
        (b"v=0\r\n\xff", "bad SDP: not valid UTF-8"),
    ],
)
def test_parse_errors(sdp: str | bytes, reason: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(sdp)
    assert str(info.value) == reason


def test_unknown_lines_and_attributes_survive() -> None:
    sdp = (
        "v=0\r\no=- 1 2 IN IP6 ::1\r\ns=call\r\ni=info\r\nc=IN IP6 ::1\r\nb=AS:64\r\nt=0 0\r\n"
        "a=group:BUNDLE 0\r\n"
        "m=audio 5004 RTP/AVP 0\r\nb=TIAS:64000\r\na=rtcp:5005\r\na=mid:0\r\n"
        "m=application 9 TCP/MSRP *\r\na=accept-types:text/plain\r\n"
    )
    parsed = SessionDescription.parse(sdp)
    assert parsed.media[1].fmt_tokens == ["*"] and parsed.media[0].attributes == [
        ("rtcp", "5005"),
        ("mid", "0"),
    ]
    assert parsed.serialize().decode() == sdp


MEDIA = st.builds(
    MediaDescription,
    media=st.sampled_from(["audio", "video"]),
    port=st.integers(0, 65535),
    proto=st.just("RTP/AVP"),
    formats=st.lists(st.integers(0, 127), min_size=1, max_size=4, unique=True),
    direction=st.one_of(st.none(), st.sampled_from(list(Direction))),
    ptime_ms=st.one_of(st.none(), st.integers(10, 60)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(MEDIA, max_size=3), st.integers(0, 2**40), st.sampled_from(["192.0.2.1", "2001:db8::1"]))
def test_generated_descriptions_round_trip(
    media: list[MediaDescription], session_id: int, address: str
) -> None:
    for m in media:
        m.rtpmap = {pt: ("PCMU" if pt == 0 else f"X{pt}", 8000) for pt in m.formats}
    sdp = SessionDescription(str(session_id), "1", address, connection_address=address, media=media)
    assert SessionDescription.parse(sdp.serialize()) == sdp


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_sdp_error(text: str) -> None:
    try:
        SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 h\r\n" + text)
    except SdpError:
        pass
