"""Media sessions on a driven clock and an in-memory network: no sockets, no real waiting."""

from __future__ import annotations

import asyncio
import errno
import gc
import weakref

import pytest
from structlog.testing import capture_logs

from ivr.clock import FakeClock
from ivr.media.g711 import PCMU
from ivr.media.tones import tone
from ivr.rtp import (
    MediaEngine,
    MediaFailed,
    MediaFailedError,
    MediaFailure,
    MediaParams,
    MediaSession,
    PlaybackStalled,
    PlayOutcome,
    RtpPacket,
)
from ivr.testing.rtpprobe import MediaProbe, MemoryNetwork, dominant_frequency_hz

STRANGER = ("127.0.0.66", 40000)


async def pair(engine: MediaEngine, **ours: object) -> tuple[MediaSession, MediaSession]:
    """Our leg `a` (its params overridden by `ours`) and the caller's leg `b`, started."""
    a, b = await engine.open_session(call_id="ours"), await engine.open_session(call_id="caller")
    a.start(MediaParams(**{"remote": b.local, **ours}))  # type: ignore[arg-type]
    b.start(MediaParams(remote=a.local))
    await asyncio.sleep(0)  # the media clock's first tick is due at once: let it run before time moves
    return a, b


async def test_one_send_error_costs_one_packet_and_the_audio_goes_on(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    a, b = await pair(engine)
    await clock.advance(0.2)
    net.port(a.local).fail_sends(1)
    before = b.inbound.stats.received if b.inbound else 0
    with capture_logs() as logs:
        await clock.advance(1.0)
    assert b.inbound is not None and b.inbound.stats.received - before == 49  # 50 ticks, one packet lost
    assert engine.counters.send_errors == 1 and a.failure is None
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["rtp_send_failed"]
    result = await asyncio.gather(a.play(tone((1000.0,), 0.2)), clock.advance(0.3))
    assert result[0].outcome is PlayOutcome.COMPLETED


async def test_sends_failing_for_the_limit_fail_the_media_once_and_the_prompt_with_it(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    a, _ = await pair(engine)
    failures: list[MediaFailed] = []
    a.on_media_failed(failures.append)
    waiter = asyncio.ensure_future(a.wait_failed())
    await clock.advance(0.1)
    net.port(a.local).failing = OSError(errno.ENETUNREACH, "Network is unreachable")
    prompt = asyncio.ensure_future(a.play(tone((1000.0,), 30.0)))
    with capture_logs() as logs:
        await clock.advance(4.9)
        assert failures == [] and not prompt.done()
        await clock.advance(0.2)
    assert [f.reason for f in failures] == [MediaFailure.SEND_FAILED]
    assert "Network is unreachable" in failures[0].detail
    assert (await waiter) is failures[0]
    with pytest.raises(MediaFailedError, match="no RTP could be sent"):
        await prompt
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["rtp_send_failed", "rtp_send_failed", "media_failed"]
    assert warnings[1]["not_logged"] > 200  # 50 errors a second, logged once per 5 s
    assert engine.counters.media_failures == 1
    with pytest.raises(MediaFailedError):
        await a.play(tone((1000.0,), 0.1))


async def test_rtp_from_a_stranger_is_ignored_while_the_callers_audio_keeps_flowing(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    ours, caller = await pair(engine)
    probe = MediaProbe(ours, clock)
    playing = asyncio.ensure_future(caller.play(tone((1000.0,), 1.0)))
    noise = PCMU.encode_frames(tone((440.0,), 1.0))
    for n, payload in enumerate(noise):  # the stranger sprays a louder tone at our port, every 20 ms
        net.inject(RtpPacket(0, n, n * 160, 0xBAD, payload).serialize(), STRANGER, ours.local)
        await clock.advance(0.02)
    await clock.advance(0.2)
    assert (await playing).outcome is PlayOutcome.COMPLETED
    assert ours.remote == caller.local
    assert engine.counters.wrong_source == 50
    audio = probe.audio()
    assert audio.size >= 8000 and dominant_frequency_hz(audio) == pytest.approx(1000.0, abs=10.0)


async def test_an_ipv6_offer_from_a_phone_sending_from_its_ipv4_address_is_answered_by_latching(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    """linphone's default: `c=IN IP6 fd00::2` in the offer, packets from 127.0.0.1 (issue 24)."""
    ours, caller = await pair(engine, peer_host="127.0.0.1", confirmed=False)
    ours.start(MediaParams(remote=("fd00::2", caller.local_port), peer_host="127.0.0.1", confirmed=False))
    assert ours.remote is None  # an IPv4 socket cannot send there: wait for the caller's packets
    probe = MediaProbe(caller, clock)
    await clock.advance(0.5)
    assert ours.remote == caller.local
    assert engine.counters.send_errors == 0 and ours.failure is None
    assert probe.received_s >= 0.4


@pytest.mark.parametrize("idle_silence", [True, False], ids=["comfort silence", "keep-alive"])
async def test_an_unreachable_offer_with_no_packets_fails_with_no_media_after_the_latch_window(
    engine: MediaEngine, clock: FakeClock, idle_silence: bool
) -> None:
    engine.idle_silence = idle_silence  # keep-alive: idle ticks send nothing, and must still watch the window
    ours = await engine.open_session()
    ours.start(MediaParams(remote=("fd00::2", 4000), peer_host="127.0.0.1", confirmed=False))
    await clock.advance(1.9)
    assert ours.failure is None
    await clock.advance(0.2)
    assert ours.failure is not None and ours.failure.reason is MediaFailure.NO_MEDIA
    assert "fd00::2" in ours.failure.detail and engine.counters.send_errors == 0


async def test_an_offer_on_hold_sends_nothing_and_is_not_a_failure(engine: MediaEngine, clock: FakeClock) -> None:
    ours = await engine.open_session()
    ours.start(MediaParams(remote=("0.0.0.0", 4000)))
    await clock.advance(5.0)
    assert ours.remote is None and ours.failure is None and engine.counters.send_errors == 0


async def test_nothing_is_sent_before_the_ack_or_the_callers_first_packet(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    silent_peer = await net.bind("127.0.0.1", 4000)  # a peer that never sends (nor listens for us)
    ours = await engine.open_session()
    ours.start(MediaParams(remote=("127.0.0.1", 4000), confirmed=False))
    await clock.advance(1.0)
    assert net.port(ours.local).sent == 0
    ours.confirm()  # the ACK came
    await clock.advance(0.1)
    assert net.port(ours.local).sent == 5
    silent_peer.close()


async def test_a_socket_closed_under_the_session_fails_its_media_and_its_prompt(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    ours, _ = await pair(engine)
    prompt = asyncio.ensure_future(ours.play(tone((1000.0,), 5.0)))
    await clock.advance(0.1)
    net.port(ours.local).lose()
    with pytest.raises(MediaFailedError, match="closed"):
        await prompt
    assert ours.failure is not None and ours.failure.reason is MediaFailure.SOCKET_CLOSED


async def test_a_prompt_the_media_clock_no_longer_drives_fails_instead_of_waiting_forever(
    engine: MediaEngine, clock: FakeClock
) -> None:
    ours, _ = await pair(engine)
    prompt = asyncio.ensure_future(ours.play(tone((1000.0,), 1.0)))
    await clock.advance(0.1)
    engine.scheduler.close()  # every sender gone
    await clock.advance(3.2)
    with pytest.raises(PlaybackStalled, match="did not finish in 3.2 s"):
        await prompt


async def test_a_started_prompt_is_a_future_and_cancelling_it_silences_the_caller(
    engine: MediaEngine, clock: FakeClock
) -> None:
    ours, caller = await pair(engine)
    before = len(asyncio.all_tasks())
    playing = ours.start_play(tone((1000.0,), 2.0))
    assert len(asyncio.all_tasks()) == before  # no task per prompt (issue 22)
    await clock.advance(0.5)
    assert ours.playing and not playing.done()
    playing.cancel()
    await clock.advance(0.1)
    assert not ours.playing
    done = ours.start_play(tone((1000.0,), 0.2))
    await clock.advance(0.3)
    assert done.result().outcome is PlayOutcome.COMPLETED


async def test_closing_reports_lost_never_negative_with_repeated_event_end_packets(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    peer = ("127.0.0.1", 4000)
    ours = await engine.open_session()
    ours.start(MediaParams(remote=peer))
    for seq in range(1, 11):
        net.inject(RtpPacket(0, seq, seq * 160, 0x51, PCMU.silence()).serialize(), peer, ours.local)
    end = bytes([0, 0x80 | 10, 0x03, 0x20])  # key 0 ended: sent three times with one sequence number
    for _ in range(3):
        net.inject(RtpPacket(101, 11, 1600, 0x51, end).serialize(), peer, ours.local)
    await clock.advance(0.02)
    with capture_logs() as logs:
        ours.close()
    closed = next(entry for entry in logs if entry["event"] == "rtp_session_closed")
    assert (closed["received"], closed["lost"], closed["duplicates"]) == (11, 0, 2)


class ForgetfulPort:
    """A port that, like `UdpNetwork`'s, delivers nothing after close and lets go of the session's callbacks."""

    def __init__(self) -> None:
        self.callbacks: tuple[object, ...] = ()

    def attach(self, receiver: object, on_error: object, on_lost: object) -> None:
        self.callbacks = (receiver, on_error, on_lost)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        self.callbacks = ()


class ForgetfulNetwork:
    async def bind(self, host: str, port: int) -> ForgetfulPort:
        return ForgetfulPort()


async def test_a_closed_session_is_freed_at_once_not_left_for_the_garbage_collector(clock: FakeClock) -> None:
    engine = MediaEngine(clock=clock, network=ForgetfulNetwork(), port_first=31000, port_last=31099)
    session = await engine.open_session(call_id="freed")
    session.start(MediaParams(remote=("127.0.0.1", 40000)))
    session.on_dtmf(lambda event: None)
    session.add_audio_consumer(lambda frame: None)
    session.confirm()
    await clock.advance(0.1)
    gone = weakref.ref(session)
    gc.disable()
    try:
        session.close()
        del session
        assert gone() is None  # no reference cycle: the session and its parts went with their last reference
    finally:
        gc.enable()
        engine.close()
