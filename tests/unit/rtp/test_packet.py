from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.errors import RtpParseError
from ivr.rtp.packet import HeaderWriter, RtpPacket, is_rtcp, seq_delta, ts_delta

from .pcap import read_udp, sipp_pcap

# A PCMA packet as SIPp's g711a.pcap carries it: V=2, M=1, PT=8, seq 59133, ts 240, SSRC 0xdee0ee8f.
CAPTURED_HEADER = bytes.fromhex("8088e6fd000000f0dee0ee8f")


def test_round_trip_of_a_captured_header() -> None:
    data = CAPTURED_HEADER + bytes(range(240))
    packet = RtpPacket.parse(data)
    assert packet.serialize() == data
    assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc) == (
        8,
        True,
        59133,
        240,
        0xDEE0EE8F,
    )
    assert len(packet.payload) == 240


def test_round_trip_of_sipp_g711a_capture() -> None:
    path = sipp_pcap("g711a.pcap")
    if path is None:
        pytest.skip("SIPp pcaps not installed (apt install sip-tester)")
    datagrams = read_udp(path)
    assert len(datagrams) > 200
    sequence = []
    for datagram in datagrams:
        packet = RtpPacket.parse(datagram.payload)
        assert packet.serialize() == datagram.payload
        assert packet.payload_type == 8
        sequence.append(packet.sequence_number)
    assert all(seq_delta(b, a) == 1 for a, b in zip(sequence, sequence[1:], strict=False))


def test_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=101,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=1,
        payload=b"\x01\x02",
        marker=False,
        csrc=(10, 20),
        extension_profile=0xBEDE,
        extension=b"\x10\xff\x00\x00",
        padding_size=4,
    )
    data = packet.serialize()
    assert len(data) == 12 + 8 + 4 + 4 + 2 + 4
    assert RtpPacket.parse(data) == packet
    assert RtpPacket.parse(data).serialize() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "RTP packet length is less than 12 bytes"),
        (b"\x40" + bytes(11), "RTP packet has invalid version"),
        (b"\x82" + bytes(11) + bytes(4), "RTP packet has truncated CSRC list"),
        (b"\x90" + bytes(11) + b"\x00\x00", "RTP packet has truncated extension header"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4), "RTP packet has truncated extension"),
        (b"\xa0" + bytes(11) + b"\x00", "RTP packet has invalid padding length"),
        (b"\xa0" + bytes(11) + b"\x01\x02\x05", "RTP packet has invalid padding length"),
    ],
    ids=["short", "version", "csrc", "ext-header", "ext", "padding-zero", "padding-long"],
)
def test_parse_errors_are_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_our_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert RtpPacket.parse(packet.serialize()) == packet


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
)
def test_header_writer_matches_the_general_serializer(
    pt: int, seq: int, ts: int, ssrc: int, marker: bool, payload: bytes
) -> None:
    expected = RtpPacket(pt, seq, ts, ssrc, payload, marker).serialize()
    assert HeaderWriter(ssrc, pt).write(seq, ts, payload, marker) == expected


@pytest.mark.parametrize(
    ("newer", "older", "delta"),
    [(5, 3, 2), (3, 5, -2), (0, 65535, 1), (65535, 0, -1), (32767, 0, 32767), (32768, 0, -32768)],
)
def test_sequence_distance_wraps(newer: int, older: int, delta: int) -> None:
    assert seq_delta(newer, older) == delta


def test_timestamp_distance_wraps() -> None:
    assert ts_delta(80, 0xFFFFFFFF - 79) == 160
    assert ts_delta(0xFFFFFFFF - 79, 80) == -160


def test_rtcp_is_told_apart_from_rtp_by_packet_type() -> None:
    assert is_rtcp(b"\x80\xc8\x00\x06")  # SR
    assert is_rtcp(b"\x81\xc9\x00\x07")  # RR
    assert not is_rtcp(CAPTURED_HEADER)
    assert not is_rtcp(b"\x80\x65")  # telephone-event, PT 101
