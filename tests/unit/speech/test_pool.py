from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from structlog.testing import capture_logs

from ivr.speech import DecodePool, RecognizerError
from ivr.speech.pool import DecodeSession

from .fakes import ScriptedRecognizer


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
