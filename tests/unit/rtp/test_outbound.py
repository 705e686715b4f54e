from __future__ import annotations

import numpy as np

from ivr.media.g711 import PCMA, PCMU
from ivr.media.goertzel import DtmfDetector
from ivr.media.tones import tone
from ivr.rtp.dtmf import TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender
from ivr.rtp.outbound import OutboundStream
from ivr.rtp.packet import RtpPacket

SILENCE_U = PCMU.silence()


def stream(**kwargs: object) -> OutboundStream:
    options: dict[str, object] = {
        "ssrc": 0x1234,
        "ts_offset": 1000,
        "first_seq": 65534,
        "telephone_event_pt": 101,
    }
    options.update(kwargs)
    return OutboundStream(PCMU, **options)  # type: ignore[arg-type]


def send(out: OutboundStream, ticks: range) -> list[RtpPacket]:
    return [RtpPacket.parse(p) for tick in ticks if (p := out.tick(tick)) is not None]


def frames(*levels: int) -> tuple[bytes, ...]:
    return tuple(PCMU.encode(np.full(160, level, np.int16)) for level in levels)


def test_idle_stream_sends_comfort_silence_with_clock_timestamps() -> None:
    packets = send(stream(), range(5))
    assert [p.sequence_number for p in packets] == [65535, 0, 1, 2, 3]
    assert [p.timestamp for p in packets] == [1000 + 160 * n for n in range(5)]
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert {p.payload for p in packets} == {SILENCE_U}
    assert {(p.ssrc, p.payload_type) for p in packets} == {(0x1234, 0)}


def test_idle_stream_can_send_nothing() -> None:
    assert send(stream(idle_silence=False), range(5)) == []


def test_skipped_ticks_advance_the_timestamp() -> None:
    out = stream()
    packets = send(out, range(0, 2)) + send(out, range(50, 51))
    assert [p.timestamp - 1000 for p in packets] == [0, 160, 50 * 160]
    assert [p.sequence_number for p in packets] == [65535, 0, 1]


def test_clip_plays_then_reports_completion_then_silence() -> None:
    out = stream()
    done: list[tuple[int, bool]] = []
    out.play(frames(100, 200, 300), lambda sent, completed: done.append((sent, completed)))
    packets = send(out, range(5))
    assert [p.payload for p in packets] == list(frames(100, 200, 300)) + [SILENCE_U, SILENCE_U]
    assert done == [(3, True)]
    assert not out.playing


def test_a_new_clip_replaces_the_old_one_which_reports_not_completed() -> None:
    out = stream()
    done: list[tuple[str, int, bool]] = []
    out.play(frames(1, 2, 3), lambda sent, ok: done.append(("first", sent, ok)))
    send(out, range(2))
    out.play(frames(9), lambda sent, ok: done.append(("second", sent, ok)))
    packets = send(out, range(2, 4))
    assert done == [("first", 2, False), ("second", 1, True)]
    assert packets[0].payload == frames(9)[0]


def test_hold_music_loops_and_a_clip_takes_priority() -> None:
    out = stream()
    out.set_loop(frames(1, 2))
    out.play(frames(7), lambda sent, ok: None)
    packets = send(out, range(6))
    assert [p.payload for p in packets] == list(frames(7, 1, 2, 1, 2, 1))


def test_rfc4733_key_preempts_audio_and_audio_resumes_with_a_marker() -> None:
    out = stream()
    sent: list[str] = []
    out.play(frames(*range(10, 30)), lambda s, ok: None)
    out.send_key(TelephoneEventSender("7", duration_ms=60), (), lambda: sent.append("7"))
    packets = send(out, range(8))
    events = [p for p in packets if p.payload_type == 101]
    assert len(events) == 3 + 2  # 3 tone packets, the end sent 3 times in all
    assert {p.timestamp for p in events} == {1000}
    assert events[0].marker
    assert sent == ["7"]
    audio = [p for p in packets if p.payload_type == 0]
    assert audio[0].marker and audio[0].timestamp == 1000 + 5 * 160
    assert audio[0].payload == frames(10)[0]  # the prompt paused, nothing was skipped
    assert [p.sequence_number for p in packets] == [(65535 + n) & 0xFFFF for n in range(8)]
    receiver = TelephoneEventReceiver()
    heard = [receiver.receive(p.timestamp, p.marker, p.payload, i * 0.02) for i, p in enumerate(events)]
    assert [h for h in heard if h] == ["7"]
    assert TelephoneEvent.parse(events[-1].payload).end


def test_inband_key_when_no_telephone_event_type_was_negotiated() -> None:
    out = stream(telephone_event_pt=None)
    assert not out.sends_events
    sent: list[bool] = []
    key = PCMU.encode_frames(tone((852.0, 1477.0), 0.1))
    out.send_key(None, key, lambda: sent.append(True))
    packets = send(out, range(8))
    assert {p.payload_type for p in packets} == {0}
    audio = np.concatenate([PCMU.decode(p.payload) for p in packets])
    assert "".join(k for k, _ in DtmfDetector().feed(audio)) == "9"
    assert sent == [True]


def test_relay_renumbers_and_follows_source_timing() -> None:
    out = stream()
    send(out, range(3))
    payload = PCMA.silence()
    first = RtpPacket.parse(out.relay(payload, 5000, 77, False, False, tick=3) or b"")
    second = RtpPacket.parse(out.relay(payload, 5160, 77, False, False, tick=3) or b"")
    event = RtpPacket.parse(out.relay(b"\x01\x0a\x00\xa0", 5320, 77, True, True, tick=4) or b"")
    assert first.marker and first.timestamp == 1000 + 3 * 160
    assert not second.marker and second.timestamp == first.timestamp + 160
    assert event.payload_type == 101 and event.timestamp == first.timestamp + 320
    assert [first.sequence_number, second.sequence_number, event.sequence_number] == [2, 3, 4]
    new_source = RtpPacket.parse(out.relay(payload, 9, 78, False, False, tick=10) or b"")
    assert new_source.marker and new_source.timestamp == 1000 + 10 * 160


def test_relayed_event_is_dropped_without_a_telephone_event_type() -> None:
    assert stream(telephone_event_pt=None).relay(b"\x01\x0a\x00\xa0", 1, 1, True, True, tick=0) is None


def test_counters_for_sender_reports() -> None:
    out = stream()
    send(out, range(10))
    assert out.packets_sent == 10
    assert out.octets_sent == 1600
