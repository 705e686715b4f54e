from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.errors import RtpParseError
from ivr.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    compound_report,
    ntp_middle,
    ntp_timestamp,
    parse_rtcp,
    round_trip_s,
)

BLOCK = ReportBlock(
    ssrc=0x11223344,
    fraction_lost=25,
    packets_lost=-3,
    highest_sequence=0x1_0005,
    jitter=42,
    lsr=0xAABBCCDD,
    dlsr=65536,
)


def test_compound_round_trip() -> None:
    packets: list[RtcpPacket] = [
        SenderReport(0xDEADBEEF, ntp_timestamp(1_700_000_000.5), 123456, 50, 8000, (BLOCK,)),
        SourceDescription(((0xDEADBEEF, "ivr@host"),)),
        Goodbye((0xDEADBEEF,)),
    ]
    data = b"".join(p.serialize() for p in packets)
    assert parse_rtcp(data) == packets
    assert b"".join(p.serialize() for p in parse_rtcp(data)) == data


def test_receiver_report_round_trip_and_layout() -> None:
    report = ReceiverReport(7, (BLOCK, BLOCK))
    data = report.serialize()
    assert data[:4] == bytes([0x82, 201, 0, 13])  # V=2 RC=2, PT=RR, length 13 words
    assert parse_rtcp(data) == [report]


def test_sdes_pads_each_chunk_to_a_word() -> None:
    for name in ("a", "ab", "abc", "abcd", "abcde"):
        data = SourceDescription(((9, name),)).serialize()
        assert len(data) % 4 == 0
        assert parse_rtcp(data) == [SourceDescription(((9, name),))]


def test_unknown_packet_types_are_skipped() -> None:
    app = bytes([0x80, 204, 0, 2]) + b"\x00\x00\x00\x01name"
    assert parse_rtcp(app + Goodbye((5,)).serialize()) == [Goodbye((5,))]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc8", "RTCP packet length is less than 4 bytes"),
        (b"\x40\xc8\x00\x00", "RTCP packet has invalid version"),
        (b"\x80\xc8\x00\x06" + bytes(8), "RTCP packet is truncated"),
        (b"\x81\xc8\x00\x06" + bytes(24), "RTCP sender report is truncated"),
        (b"\x81\xc9\x00\x01" + bytes(4), "RTCP receiver report is truncated"),
        (b"\xa0\xc9\x00\x01" + b"\x00\x00\x00\x09", "RTCP packet has invalid padding length"),
        (ReceiverReport(1).serialize() + b"\x80", "RTCP packet is truncated"),
    ],
    ids=["short", "version", "length", "sr", "rr", "padding", "trailing"],
)
def test_parse_errors_are_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_raise_our_error(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtpParseError:
        return
    for packet in packets:
        assert parse_rtcp(packet.serialize()) == [packet]


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.0) == 2208988800 << 32
    assert ntp_timestamp(0.5) & 0xFFFFFFFF == 1 << 31
    assert ntp_middle(0x0123_4567_89AB_CDEF) == 0x4567_89AB


def test_reception_stats_count_loss_and_wrap() -> None:
    stats = ReceptionStats()
    arrival = 100.0
    for seq in [65530, 65531, 65533, 65534, 65535, 0, 1, 3]:  # 65532 and 2 lost, wraps once
        stats.update(seq, seq * 160, arrival)
        arrival += 0.02
    assert stats.expected == 10
    assert stats.lost == 2
    assert stats.extended_max == (1 << 16) + 3
    block = stats.report_block(0xABC, now=arrival)
    assert block.fraction_lost == (2 << 8) // 10
    assert block.packets_lost == 2
    assert block.highest_sequence == (1 << 16) + 3
    stats.update(4, 4 * 160, arrival)
    assert stats.report_block(0xABC, now=arrival).fraction_lost == 0  # nothing lost in the new interval


def test_reception_stats_jitter_follows_rfc3550_estimator() -> None:
    stats = ReceptionStats()
    for n in range(200):  # every other packet 10 ms late: |D| alternates 80 timestamp units
        stats.update(n, n * 160, n * 0.02 + (0.01 if n % 2 else 0.0))
    assert stats.jitter == pytest.approx(80.0, rel=0.01)
    quiet = ReceptionStats()
    for n in range(50):
        quiet.update(n, n * 160, n * 0.02)
        quiet.update(1000 + n, 0, n * 0.02, timing=False)  # event packets repeat a timestamp
    assert quiet.jitter < 1.0


def test_sr_echo_gives_round_trip_time() -> None:
    stats = ReceptionStats()
    sent_ntp = ntp_timestamp(1000.0)
    stats.sender_report_received(sent_ntp, arrival_s=50.0)
    stats.update(1, 160, 50.0)
    block = stats.report_block(1, now=50.25)  # we hold their SR 250 ms before reporting
    assert block.lsr == ntp_middle(sent_ntp)
    assert block.dlsr == int(0.25 * 65536)
    # the peer receives our RR 300 ms after it sent its SR: 50 ms of network both ways
    assert round_trip_s(block, ntp_timestamp(1000.3)) == pytest.approx(0.05, abs=1e-3)
    assert round_trip_s(ReportBlock(1, 0, 0, 0, 0), ntp_timestamp(5.0)) is None


def test_compound_report_is_sr_or_rr_then_sdes_then_bye() -> None:
    sender = compound_report(5, "ivr@x", (ntp_timestamp(10.0), 1600, 10, 1600), BLOCK, goodbye=True)
    packets = parse_rtcp(sender)
    assert [type(p) for p in packets] == [SenderReport, SourceDescription, Goodbye]
    assert packets[0] == SenderReport(5, ntp_timestamp(10.0), 1600, 10, 1600, (BLOCK,))
    assert packets[1] == SourceDescription(((5, "ivr@x"),))
    receiver = parse_rtcp(compound_report(5, "ivr@x", None, None))
    assert receiver == [ReceiverReport(5, ()), SourceDescription(((5, "ivr@x"),))]


def test_duplicates_are_not_counted_as_received_so_loss_never_goes_negative() -> None:
    stats = ReceptionStats()
    for seq in [65534, 65535, 0, 0, 0, 1, 65535, 3]:  # RFC 4733 end packets repeated, a wrap, one lost
        stats.update(seq, 0, 0.0, timing=False)
    assert (stats.received, stats.duplicates, stats.expected, stats.lost) == (5, 3, 6, 1)


def test_a_late_packet_is_not_a_duplicate() -> None:
    stats = ReceptionStats()
    for seq in [10, 12, 11]:
        stats.update(seq, 0, 0.0, timing=False)
    assert (stats.received, stats.duplicates, stats.lost) == (3, 0, 0)
