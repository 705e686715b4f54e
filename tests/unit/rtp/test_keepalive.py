"""Keep-alive instead of comfort silence while idle: which ticks send, sequence numbers, timestamps, markers.

The stream is driven tick by tick (pure); the session-level tests run on a `FakeClock` and a `MemoryNetwork`.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ivr.clock import FakeClock
from ivr.media.g711 import PCMU
from ivr.rtp import MediaEngine, MediaParams, RtpPacket
from ivr.rtp.outbound import IDLE_HANGOVER_TICKS, OutboundStream
from ivr.rtp.session import MediaSession
from ivr.testing.rtpprobe import MediaProbe, MemoryNetwork

SILENCE_U = PCMU.silence()
EVERY = 50


def keepalive(every: int = EVERY) -> OutboundStream:
    return OutboundStream(PCMU, ssrc=0x1234, ts_offset=1000, first_seq=65530, telephone_event_pt=101,
                          idle_silence=False, keepalive_ticks=every)


def sent(out: OutboundStream, ticks: range) -> dict[int, RtpPacket]:
    """Tick → the packet sent on it, for the ticks that sent one."""
    return {tick: RtpPacket.parse(p) for tick in ticks if (p := out.tick(tick)) is not None}


def frames(count: int, level: int = 1000) -> tuple[bytes, ...]:
    return tuple(PCMU.encode(np.full(160, level, np.int16)) for _ in range(count))


def test_an_idle_stream_sends_the_hangover_then_one_packet_every_interval() -> None:
    packets = sent(keepalive(), range(200))
    hangover = list(range(IDLE_HANGOVER_TICKS))
    assert list(packets) == hangover + [IDLE_HANGOVER_TICKS - 1 + EVERY * n for n in (1, 2, 3)]
    assert {p.payload for p in packets.values()} == {SILENCE_U}


def test_sequence_numbers_stay_consecutive_across_gaps_while_timestamps_follow_the_ticks() -> None:
    packets = sent(keepalive(), range(200))
    assert [p.sequence_number for p in packets.values()] == [(65531 + n) & 0xFFFF for n in range(len(packets))]
    assert [p.timestamp for p in packets.values()] == [1000 + 160 * tick for tick in packets]


def test_the_first_packet_after_a_tick_that_sent_nothing_carries_the_marker() -> None:
    out = keepalive()
    packets = sent(out, range(100))
    out.play(frames(3), lambda sent, completed: None)
    packets |= sent(out, range(100, 103))
    markers = [tick for tick, p in packets.items() if p.marker]
    assert markers == [0, IDLE_HANGOVER_TICKS - 1 + EVERY, 100]  # the stream's first, the keep-alive, the prompt
    assert [p.payload for tick, p in packets.items() if tick >= 100] == list(frames(3))


def test_a_prompt_that_starts_within_the_hangover_continues_the_talkspurt() -> None:
    out = keepalive()
    out.play(frames(5), lambda sent, completed: None)
    sent(out, range(5))
    idle = sent(out, range(5, 5 + IDLE_HANGOVER_TICKS - 1))
    out.play(frames(2, level=2000), lambda sent, completed: None)
    prompt = sent(out, range(5 + IDLE_HANGOVER_TICKS - 1, 20))
    assert len(idle) == IDLE_HANGOVER_TICKS - 1 and not any(p.marker for p in (idle | prompt).values())
    assert [p.payload for p in prompt.values()][:2] == list(frames(2, level=2000))


def test_idle_counts_again_from_the_end_of_each_prompt() -> None:
    out = keepalive()
    out.play(frames(10), lambda sent, completed: None)
    packets = sent(out, range(10 + IDLE_HANGOVER_TICKS + EVERY + 1))
    prompt_and_hangover = list(range(10 + IDLE_HANGOVER_TICKS))
    assert list(packets) == prompt_and_hangover + [10 + IDLE_HANGOVER_TICKS - 1 + EVERY]


def test_a_key_ends_the_idle_run_and_hold_music_never_starts_one() -> None:
    out = keepalive()
    sent(out, range(100))
    out.send_key(None, frames(2), lambda: None)  # an in-band key: two tone frames
    after_key = sent(out, range(100, 102 + IDLE_HANGOVER_TICKS + 5))
    assert list(after_key) == list(range(100, 102 + IDLE_HANGOVER_TICKS))
    out.set_loop(frames(3))
    assert list(sent(out, range(200, 400))) == list(range(200, 400))


def test_with_no_interval_an_idle_stream_sends_nothing_and_the_next_prompt_is_marked() -> None:
    out = keepalive(every=0)
    assert sent(out, range(100)) == {}
    out.play(frames(1), lambda sent, completed: None)
    assert [(tick, p.marker) for tick, p in sent(out, range(100, 102)).items()] == [(100, True)]


@pytest.mark.parametrize(("keepalive_s", "ticks"), [(1.0, 50), (0.5, 25), (0.02, 1)], ids=["1s", "half", "tick"])
def test_the_engine_turns_the_interval_into_ticks(keepalive_s: float, ticks: int) -> None:
    engine = MediaEngine(clock=FakeClock(), network=MemoryNetwork(), idle_silence=False, keepalive_s=keepalive_s)
    assert engine.keepalive_ticks == ticks
    engine.close()


@pytest.mark.parametrize("keepalive_s", [0.0, 1.5], ids=["zero", "over-1s"])
def test_the_engine_refuses_an_interval_out_of_range(keepalive_s: float) -> None:
    with pytest.raises(ValueError, match="keepalive_s"):
        MediaEngine(clock=FakeClock(), network=MemoryNetwork(), idle_silence=False, keepalive_s=keepalive_s)


async def started_pair(engine: MediaEngine, caller_engine: MediaEngine) -> tuple[MediaSession, MediaSession]:
    """Our leg and the caller's, started; the media clock's first tick has not run yet."""
    ours, caller = await engine.open_session(call_id="ours"), await caller_engine.open_session(call_id="caller")
    ours.start(MediaParams(remote=caller.local))
    caller.start(MediaParams(remote=ours.local))
    return ours, caller


async def test_a_caller_hears_the_prompt_and_a_gapless_recording_with_no_loss() -> None:
    clock, net = FakeClock(start=1000.0), MemoryNetwork()
    engine = MediaEngine(clock=clock, network=net, port_first=30000, port_last=30099, idle_silence=False)
    caller_engine = MediaEngine(clock=clock, network=net, port_first=31000, port_last=31099)
    ours, caller = await started_pair(engine, caller_engine)
    probe = MediaProbe(caller, clock)
    prompt = ours.start_play(np.full(8000, 3000, np.int16))  # 1 s, from the first tick
    await asyncio.sleep(0)
    await clock.advance(5.0)
    assert prompt.done()
    sent = net.port(ours.local).sent
    assert sent == 50 + IDLE_HANGOVER_TICKS + 3  # the prompt, the hangover, keep-alives at ticks 109, 159, 209
    # Gaps up to a second are filled with silence on arrival: what the caller heard runs to the last keep-alive.
    audio = probe.audio()
    assert len(audio) == 160 * (50 + IDLE_HANGOVER_TICKS - 1 + 3 * EVERY) + 160
    assert np.all(audio[: 8000 - 160] != 0) and not np.any(audio[8000:])
    stats = caller.inbound.stats  # type: ignore[union-attr]
    assert stats.received == sent and stats.lost == 0
    engine.close()
    caller_engine.close()



def test_a_keepalive_goes_one_interval_after_the_last_packet_even_when_ticks_were_skipped() -> None:
    out = keepalive()
    sent(out, range(IDLE_HANGOVER_TICKS))  # the hangover: ticks 0-9
    late = sent(out, range(30, 40)) | sent(out, range(70, 80))  # the media clock skipped 10-29 and 40-69
    assert list(late) == [70]  # the first tick run at least 50 ticks after tick 9 (tick 59 was skipped)
