from __future__ import annotations

import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.dtmf import TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender, event_code
from ivr.rtp.errors import RtpParseError
from ivr.rtp.packet import RtpPacket

from .pcap import read_udp, sipp_pcap

SIPP_DIGITS = {
    "0": "0",
    "1": "1",
    "2": "2",
    "3": "3",
    "4": "4",
    "5": "5",
    "6": "6",
    "7": "7",
    "8": "8",
    "9": "9",
    "star": "*",
    "pound": "#",
}


def sipp_packets(name: str) -> list[tuple[float, RtpPacket]]:
    path = sipp_pcap(f"dtmf_2833_{name}.pcap")
    if path is None:
        pytest.skip("SIPp's dtmf_2833_*.pcap not installed (apt install sip-tester)")
    datagrams = read_udp(path)
    start = datagrams[0].time_s
    return [(d.time_s - start, RtpPacket.parse(d.payload)) for d in datagrams]


def feed(
    receiver: TelephoneEventReceiver, packets: list[tuple[float, RtpPacket]], offset: float = 0.0
) -> str:
    return "".join(
        digit
        for at, p in packets
        if (digit := receiver.receive(p.timestamp, p.marker, p.payload, at + offset)) is not None
    )


def event_packet(ts: int, event: int, duration: int, *, end: bool = False, marker: bool = False) -> RtpPacket:
    return RtpPacket(101, 0, ts, 1, TelephoneEvent(event, end, 10, duration).serialize(), marker)


def press(
    ts: int, event: int, start: float, *, updates: int = 5, ends: int = 3
) -> list[tuple[float, RtpPacket]]:
    """An RFC 4733 key press as a phone sends it: start (marker), updates, then `ends` end packets."""
    packets = [(start, event_packet(ts, event, 160, marker=True))]
    packets += [(start + 0.02 * n, event_packet(ts, event, 160 * (n + 1))) for n in range(1, updates)]
    packets += [
        (start + 0.02 * (updates + k), event_packet(ts, event, 160 * updates, end=True)) for k in range(ends)
    ]
    return packets


def test_payload_round_trip() -> None:
    data = bytes([0x0B, 0x8A, 0x08, 0xC0])
    event = TelephoneEvent.parse(data)
    assert event == TelephoneEvent(event=11, end=True, volume=10, duration=2240)
    assert event.digit == "#"
    assert event.serialize() == data
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash is not a key


def test_short_payload_error_is_exact() -> None:
    with pytest.raises(RtpParseError) as info:
        TelephoneEvent.parse(b"\x01\x02")
    assert str(info.value) == "telephone-event payload is less than 4 bytes"


@pytest.mark.parametrize("name", list(SIPP_DIGITS))
def test_sipp_capture_gives_its_digit_once(name: str) -> None:
    packets = sipp_packets(name)
    assert sum(1 for _, p in packets if TelephoneEvent.parse(p.payload).end) == 3  # the redundant ends
    assert feed(TelephoneEventReceiver(), packets) == SIPP_DIGITS[name]


def test_sipp_captures_in_a_row_give_every_digit() -> None:
    receiver = TelephoneEventReceiver()
    digits = "".join(feed(receiver, sipp_packets(name), offset=i * 0.5) for i, name in enumerate(SIPP_DIGITS))
    assert digits == "0123456789*#"


@pytest.mark.parametrize("pause_s", [0.5, 0.16], ids=["with-pause", "back-to-back"])
def test_the_same_capture_replayed_twice_is_two_presses(pause_s: float) -> None:
    # SIPp's play_pcap_audio replays packets verbatim: same timestamp and sequence numbers again.
    packets = sipp_packets("5")
    receiver = TelephoneEventReceiver()
    assert feed(receiver, packets) + feed(receiver, packets, offset=pause_s) == "55"


def test_a_replay_whose_first_packet_is_lost_still_counts() -> None:
    packets = sipp_packets("7")
    receiver = TelephoneEventReceiver()
    assert feed(receiver, packets) + feed(receiver, packets[1:], offset=0.16) == "77"


def test_redundant_and_reordered_packets_of_one_press_count_once() -> None:
    packets = press(8000, 3, 0.0)
    shuffled = (
        packets[:2] + [packets[3], packets[2]] + packets[4:] + [packets[2]]
    )  # a late update after the end
    assert feed(TelephoneEventReceiver(), shuffled) == "3"


def test_same_key_twice_is_two_events_with_two_timestamps() -> None:
    receiver = TelephoneEventReceiver()
    assert feed(receiver, press(8000, 1, 0.0) + press(9600, 1, 0.2)) == "11"


def test_a_press_whose_start_is_lost_is_reported_at_its_first_packet() -> None:
    assert feed(TelephoneEventReceiver(), press(8000, 9, 0.0)[2:]) == "9"
    assert feed(TelephoneEventReceiver(), press(8000, 9, 0.0)[-1:]) == "9"  # only an end packet arrived


def test_long_press_segments_are_one_key() -> None:
    # RFC 4733 2.5.1.3: past the 16-bit duration a new segment starts with a new timestamp and no
    # marker, while the previous segment has not ended: the same key, still held.
    first = [(0.0, event_packet(0, 5, 160, marker=True)), (8.1, event_packet(0, 5, 0xFFFF))]
    second = [(8.2, event_packet(0xFFFF, 5, 160)), (8.3, event_packet(0xFFFF, 5, 800, end=True))]
    assert feed(TelephoneEventReceiver(), first + second) == "5"


@pytest.mark.parametrize("duration_ms", [40, 100, 250])
def test_sender_sequence(duration_ms: int) -> None:
    sender = TelephoneEventSender("#", duration_ms=duration_ms)
    packets = []
    tick = 0
    while (packet := sender.next_packet(1000 + 160 * tick)) is not None:
        packets.append(packet)
        tick += 1
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    tone_packets = -(-duration_ms * 8 // 160)
    assert len(packets) == tone_packets + 2
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert {p.timestamp for p in packets} == {1000}  # the event keeps its start timestamp
    assert [e.duration for e in events[:tone_packets]] == [160 * (n + 1) for n in range(tone_packets)]
    assert [e.end for e in events] == [False] * (tone_packets - 1) + [True] * 3
    assert events[-1].duration == events[-2].duration == events[-3].duration
    assert {e.event for e in events} == {11}
    assert sender.done


@given(st.text(alphabet="0123456789*#ABCD", min_size=1, max_size=12))
def test_sender_and_receiver_agree(digits: str) -> None:
    receiver = TelephoneEventReceiver()
    heard = ""
    tick = 0
    for digit in digits:
        sender = TelephoneEventSender(digit)
        while (packet := sender.next_packet(160 * tick)) is not None:
            got = receiver.receive(packet.timestamp, packet.marker, packet.payload, tick * 0.02)
            heard += got or ""
            tick += 1
        tick += 3  # a short pause between keys
    assert heard == digits


def test_event_codes() -> None:
    assert [event_code(d) for d in "09*#ad"] == [0, 9, 10, 11, 12, 15]
    with pytest.raises(ValueError, match="'E' is not a DTMF key"):
        event_code("E")


def test_pcap_reader_rejects_other_files(tmp_path: pathlib.Path) -> None:
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="not a pcap file"):
        read_udp(bogus)
