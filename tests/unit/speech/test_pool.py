from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from structlog.testing import capture_logs

from ivr.speech import DecodePool, RecognizerError
from ivr.speech.pool import DecodeSession

from .fakes import ScriptedRecognizer, WholeUtteranceRecognizer


@pytest.fixture
async def pool():  # type: ignore[no-untyped-def]
    async with DecodePool(max_workers=2) as p:
        yield p


async def test_frames_are_decoded_in_order_and_finish_waits_for_them(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = pool.session(rec)
    for n in range(1, 31):
        session.feed(np.zeros(n, np.int16))
    result = await session.finish()
    assert result.text == f"heard {sum(range(1, 31))}"
    assert result.final and rec.calls[0] == "start" and rec.calls[-1] == "final"
    assert rec.calls.count("start") == 1


async def test_a_blocked_call_does_not_hold_up_another_call(pool: DecodePool) -> None:
    gate = threading.Event()
    slow = pool.session(ScriptedRecognizer(gate=gate))
    fast = pool.session(ScriptedRecognizer())
    slow.feed(np.zeros(160, np.int16))
    fast.feed(np.zeros(160, np.int16))
    result = await asyncio.wait_for(fast.finish(), timeout=10)
    assert result.text == "heard 160"
    gate.set()
    assert (await slow.finish()).text == "heard 160"


async def test_reset_drops_buffered_audio(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = pool.session(rec)
    session.feed(np.zeros(160, np.int16))
    await session.finish()
    await session.reset()
    assert (await session.finish()).text == ""


async def test_set_phrases_and_partial_run_in_order(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = pool.session(rec)
    await session.set_phrases(["file a claim"])
    session.feed(np.zeros(320, np.int16))
    assert (await session.partial()).text == "heard 320"
    assert rec.calls == ["phrases:1", "start", "feed", "partial"]


async def test_a_failing_engine_surfaces_as_recognizer_error_on_finish(pool: DecodePool) -> None:
    class Broken(ScriptedRecognizer):
        def _engine_feed(self, frame):  # type: ignore[no-untyped-def]
            raise RuntimeError("decoder exploded")

    session = pool.session(Broken("cmn"))
    with capture_logs() as logs:
        session.feed(np.zeros(160, np.int16))
        with pytest.raises(RecognizerError, match="'cmn'.*decoder exploded"):
            await session.finish()
    assert [(e["event"], e["language"]) for e in logs] == [("decode_failed", "cmn")]


async def test_close_releases_and_refuses_more_audio(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = pool.session(rec)
    await session.aclose()
    assert rec.closed
    with pytest.raises(RecognizerError, match="closed"):
        session.feed(np.zeros(160, np.int16))


async def test_a_batching_session_decodes_in_whole_batches_however_the_audio_arrived(pool: DecodePool) -> None:
    """PocketSphinx's live cepstral mean depends on how audio is chunked: a burst (the held start of an
    utterance, frames fed while a slow job ran, a bench feeding faster than real time) is decoded in the
    same 0.2 s chunks as audio that came frame by frame, counted from the utterance's first sample."""
    gate = threading.Event()
    rec = ScriptedRecognizer(gate=gate)
    session = DecodeSession(pool, rec, batch_samples=1600)
    session.feed(np.zeros(4000, np.int16))  # a burst: two whole batches start a job, 800 samples wait
    for _ in range(13):  # frames arrive while that job is still decoding
        session.feed(np.zeros(160, np.int16))
    gate.set()
    await asyncio.sleep(0.05)
    result = await session.finish()
    assert rec.fed == [1600, 1600, 1600, 1280] and result.text == "heard 6080"


async def test_a_batching_session_decodes_once_it_has_a_batch_and_finish_takes_the_rest(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = DecodeSession(pool, rec, batch_samples=1600)
    for _ in range(9):
        session.feed(np.zeros(160, np.int16))
    await asyncio.sleep(0.05)
    assert "feed" not in rec.calls  # 0.18 s buffered: no decode job yet
    session.feed(np.zeros(160, np.int16))
    await session.wait_decoded()
    assert rec.calls.count("feed") == 1  # the ten frames went in one job
    session.feed(np.zeros(160, np.int16))
    result = await session.finish()
    assert result.text == "heard 1760" and rec.calls.count("feed") == 2


async def test_a_finish_after_the_pause_does_not_wait_for_other_callers_decodes() -> None:
    """Ten callers ending together queued ten decodes in one FIFO, and every `finish` waited behind the last of
    them: a caller whose decode at the pause is done gets it back without a job on the pool."""
    async with DecodePool(max_workers=1) as pool:
        done = pool.session(WholeUtteranceRecognizer())
        done.feed(np.zeros(8000, np.int16))
        await done.settle()
        gate = threading.Event()
        decoding = threading.Event()
        others = []
        for _ in range(3):
            rec = WholeUtteranceRecognizer(gate=gate)
            rec.decoding = decoding
            others.append(pool.session(rec))
            others[-1].feed(np.zeros(1600, np.int16))
        settling = [asyncio.create_task(other.settle()) for other in others]
        assert await asyncio.to_thread(decoding.wait, 10), "a decode holds the only worker"
        result = await asyncio.wait_for(done.finish(), timeout=10)  # a job on the pool would wait for the gate
        gate.set()
        await asyncio.gather(*settling)
    alone = WholeUtteranceRecognizer()
    alone.accept(np.zeros(8000, np.int16))
    assert result == alone.finish(), "the same result as the recognizer's own finish"


async def test_after_a_finish_from_the_pause_the_recognizer_ends_that_utterance_before_the_next(
    pool: DecodePool,
) -> None:
    rec = WholeUtteranceRecognizer()
    session = pool.session(rec)
    session.feed(np.zeros(8000, np.int16))
    await session.settle()
    assert (await session.finish()).text == "heard 8000"
    assert rec.calls[-1] == "settle", "the recognizer was not asked again for the result"
    session.feed(np.zeros(160, np.int16))
    assert (await session.finish()).text == "heard 160", "a new utterance, not the old one continued"
    assert rec.calls == ["start", "feed", "settle", "final", "start", "feed", "final"]
    assert rec.decodes == 2


async def test_audio_after_the_pause_is_decoded_with_the_rest(pool: DecodePool) -> None:
    rec = WholeUtteranceRecognizer()
    session = pool.session(rec)
    session.feed(np.zeros(8000, np.int16))
    await session.settle()
    session.feed(np.zeros(800, np.int16))  # the caller went on
    assert (await session.finish()).text == "heard 8800"
    assert rec.decodes == 2


async def test_audio_fed_while_the_pause_is_decoded_makes_that_decode_stale(pool: DecodePool) -> None:
    gate = threading.Event()
    rec = WholeUtteranceRecognizer(gate=gate)
    session = pool.session(rec)
    session.feed(np.zeros(8000, np.int16))
    settling = asyncio.create_task(session.settle())
    assert await asyncio.to_thread(rec.decoding.wait, 10), "the decode at the pause is under way"
    session.feed(np.zeros(800, np.int16))
    gate.set()
    await settling
    assert (await session.finish()).text == "heard 8800"


async def test_a_streaming_engine_ignores_the_pause(pool: DecodePool) -> None:
    rec = ScriptedRecognizer()
    session = pool.session(rec)
    session.feed(np.zeros(320, np.int16))
    await session.settle()
    assert (await session.finish()).text == "heard 320"
    assert rec.calls == ["start", "feed", "final"]
