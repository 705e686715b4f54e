"""Two (or four) of our media sessions talking over real loopback UDP."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from ivr.media.tones import dtmf_sequence, tone
from ivr.rtp import (
    DtmfSource,
    HoldMode,
    MediaEngine,
    MediaParams,
    MediaScheduler,
    MediaSession,
    MediaStateError,
    PlayOutcome,
)
from ivr.testing.rtpprobe import MediaProbe, dominant_frequency_hz, level_dbfs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    first = random.randrange(20000, 60000, 2)
    engine = MediaEngine(
        port_first=first, port_last=first + 199, scheduler=MediaScheduler(report_every_ticks=10)
    )
    yield engine
    engine.close()


async def pair(
    engine: MediaEngine, pt_a: int = 0, pt_b: int = 0, te: int | None = 101
) -> tuple[MediaSession, MediaSession]:
    a = await engine.open_session(call_id="a")
    b = await engine.open_session(call_id="b")
    a.start(MediaParams(remote=b.local, payload_type=pt_a, telephone_event_pt=te))
    b.start(MediaParams(remote=a.local, payload_type=pt_b, telephone_event_pt=te))
    return a, b


async def test_a_played_tone_arrives_at_the_other_end(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    probe = MediaProbe(b)
    result = await a.play(tone((1000.0,), 0.4))
    assert result.outcome is PlayOutcome.COMPLETED and result.played_s == pytest.approx(0.4)
    audio = await probe.wait_for_audio(probe.received_s + 0.1)  # the last frames are still on their way
    loud_frames = int(np.sum(np.abs(audio.reshape(-1, 160)).max(axis=1) > 5000))
    # The 0.4 s tone is 20 frames: never more (none doubled); a worker stalled for a moment on a shared
    # machine may leave one or two frames too late for the jitter buffer, so at least 18 arrive in time.
    assert 18 <= loud_frames <= 20, loud_frames
    assert dominant_frequency_hz(audio) == pytest.approx(1000.0, abs=10.0)
    assert b.inbound is not None and b.inbound.jitter.stats.lost <= 20 - loud_frames


async def test_rfc4733_keys_are_sent_and_received_once_each(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    probe = MediaProbe(b)
    for digit in "1155#":
        await a.send_dtmf(digit, duration_ms=60)
    assert await probe.wait_for_digits(5) == "1155#"
    assert {e.source for e in probe.events} == {DtmfSource.RFC4733}
    assert probe.digits == "1155#"  # the redundant end packets did not add any


async def test_keys_go_in_band_without_telephone_events_and_are_detected(engine: MediaEngine) -> None:
    a, b = await pair(engine, te=None)
    probe = MediaProbe(b)
    for digit in "90*":
        await a.send_dtmf(digit)
    assert await probe.wait_for_digits(3) == "90*"
    assert {e.source for e in probe.events} == {DtmfSource.INBAND}


async def test_inband_keys_in_a_played_prompt_are_detected(engine: MediaEngine) -> None:
    a, b = await pair(engine, te=None)
    probe = MediaProbe(b)
    await a.play(dtmf_sequence("2580", tone_s=0.06, gap_s=0.06))
    assert await probe.wait_for_digits(4) == "2580"


async def test_barge_in_by_key_and_stop(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    playing = asyncio.create_task(a.play(tone((440.0,), 5.0), barge_in=True))
    await MediaProbe(a).wait_for_audio(0.1)  # the call is up both ways
    await b.send_dtmf("3")
    result = await playing
    assert result.outcome is PlayOutcome.INTERRUPTED_BY_DIGIT
    assert result.played_s < 1.0
    playing = asyncio.create_task(a.play(tone((440.0,), 5.0)))
    await MediaProbe(b).wait_for_audio(0.1)
    a.stop()
    assert (await playing).outcome is PlayOutcome.STOPPED


async def test_cancelling_a_play_silences_it(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    probe = MediaProbe(b)
    playing = asyncio.create_task(a.play(tone((440.0,), 5.0)))
    await probe.wait_for_audio(0.2)
    playing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await playing
    assert not a.playing
    probe.clear()
    audio = await probe.wait_for_audio(0.2)
    assert level_dbfs(audio[-800:]) < -60  # comfort silence again


async def test_record_stops_on_silence(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    await MediaProbe(b).wait_for_audio(0.06)
    # 1 s of silence ends it, not 0.3 s: under a loaded suite this process once stalled ~0.3 s mid-tone, the
    # receiver saw that as silence and the recording ended 0.24 s into the tone.
    recording = asyncio.create_task(b.record(max_s=5.0, silence_s=1.0))
    await a.play(tone((600.0,), 0.5))
    audio = await recording
    assert 1.2 <= audio.size / 8000 < 3.0
    assert dominant_frequency_hz(audio) == pytest.approx(600.0, abs=10.0)


async def test_record_stops_at_max_length(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    asyncio.create_task(a.play(tone((600.0,), 3.0)))
    audio = await b.record(max_s=0.5, silence_s=2.0)
    assert audio.size <= 4000


async def test_hold_music_and_silent_hold(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    probe = MediaProbe(b)
    a.hold(HoldMode.MUSIC)
    audio = await probe.wait_for_audio(1.5)
    assert level_dbfs(audio[-8000:]) > -45
    with pytest.raises(MediaStateError, match="on hold: cannot play"):
        await a.play(tone((440.0,), 0.1))
    a.hold(HoldMode.SILENT)
    await probe.wait_for_quiet(0.1)  # music sent before the hold may still be queued for a busy loop
    probe.clear()
    with pytest.raises(TimeoutError):
        await probe.wait_for_audio(0.06, timeout_s=0.3)
    a.unhold()
    await probe.wait_for_audio(0.1)


async def test_symmetric_rtp_latches_to_where_packets_come_from(engine: MediaEngine) -> None:
    a = await engine.open_session()
    b = await engine.open_session()
    a.start(MediaParams(remote=b.local))
    b.start(MediaParams(remote=("127.0.0.1", 9)))  # the SDP address is wrong (as behind NAT)
    probe = MediaProbe(a)
    await MediaProbe(b).wait_for_audio(0.04)
    assert b.remote == a.local
    await b.send_dtmf("6")
    assert await probe.wait_for_digits(1) == "6"


async def test_bridge_relays_and_transcodes_between_legs(engine: MediaEngine) -> None:
    caller, leg_in = await pair(engine, pt_a=0, pt_b=0)  # caller <-> our inbound leg, PCMU
    leg_out, agent = await pair(engine, pt_a=8, pt_b=8)  # our outbound leg <-> agent, PCMA
    agent_probe, caller_probe = MediaProbe(agent), MediaProbe(caller)
    bridge = leg_in.bridging.bridge(leg_out)
    assert bridge.transcoding and leg_in.bridging.bridged_to is leg_out
    await caller.play(tone((700.0,), 0.4))
    audio = await agent_probe.wait_for_audio(0.6)
    assert dominant_frequency_hz(audio) == pytest.approx(700.0, abs=10.0)
    await agent.send_dtmf("8")
    assert await caller_probe.wait_for_digits(1) == "8"
    leg_in.bridging.unbridge()
    assert leg_in.bridging.bridged_to is None and not bridge.open
    caller_probe.clear()
    await caller_probe.wait_for_audio(0.1)  # leg_in sends its own comfort silence again


async def test_info_keys_join_the_same_stream(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    events = b.dtmf_events()
    b.signal_dtmf("4")
    await a.send_dtmf("5")
    first, second = await anext(events), await anext(events)
    assert [(first.digit, first.source), (second.digit, second.source)] == [
        ("4", DtmfSource.INFO),
        ("5", DtmfSource.RFC4733),
    ]
    await events.aclose()


async def test_rtcp_reports_measure_round_trip(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    await MediaProbe(a).wait_for_audio(0.6)  # reports every 10 ticks here: SRs went both ways
    await MediaProbe(a).wait_for_audio(0.3)
    # Loopback takes microseconds; the bound only says the figure is a round trip, not a timestamp
    # mix-up (seconds or hours), while leaving room for a worker stalled on a shared machine.
    assert a.rtt_s is not None and 0.0 <= a.rtt_s < 1.0


async def test_close_releases_the_ports_even_when_the_task_is_cancelled(engine: MediaEngine) -> None:
    opened: list[MediaSession] = []
    started = asyncio.Event()

    async def call() -> None:
        async with await engine.open_session() as session:
            opened.append(session)
            started.set()
            session.start(MediaParams(remote=("127.0.0.1", 9)))
            await session.record(max_s=30.0, silence_s=30.0)

    task = asyncio.create_task(call())
    await asyncio.wait_for(started.wait(), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    session = opened[0]
    assert session.closed and session not in engine.sessions
    engine.close()  # a closed session's sockets wait for the next session (ivr.rtp.recycling) until the engine closes
    await asyncio.sleep(0)  # the transports close their sockets on the loop's next turn
    for port in (session.local_port, session.local_port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.bind(("127.0.0.1", port))
    with pytest.raises(MediaStateError, match="is closed"):
        await session.play(tone((440.0,), 0.1))


async def test_engine_release_closes_the_session(engine: MediaEngine) -> None:
    a, b = await pair(engine)
    engine.release(a)
    assert a.closed and a not in engine.sessions
    engine.release(a)  # idempotent
    assert b in engine.sessions
