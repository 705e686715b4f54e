"""The decode backlog: how far behind real time the decoders run, and which new utterances are still decoded."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from ivr.clock import FakeClock
from ivr.speech.backlog import DecodeBacklog
from ivr.speech.pool import DecodePool
from ivr.speech.recognizer import EngineKind, EngineRecognizer


def test_the_lag_is_the_age_of_the_oldest_audio_still_undecoded() -> None:
    backlog = DecodeBacklog(max_lag_s=2.0)
    first = backlog.open(now=10.0)
    second = backlog.open(now=11.0)
    assert backlog.lag_s(now=11.5) == 1.5
    backlog.caught_up(first)
    assert backlog.lag_s(now=11.5) == 0.5
    backlog.caught_up(second)
    assert backlog.lag_s(now=20.0) == 0.0, "caught-up utterances do not age"
    backlog.handed(first, now=20.0)
    backlog.handed(first, now=20.2)  # more audio behind it keeps the older time
    assert backlog.lag_s(now=20.5) == 0.5
    backlog.close(first)
    backlog.close(second)
    assert backlog.lag_s(now=30.0) == 0.0 and len(backlog) == 0


def test_past_the_bound_new_utterances_are_refused_and_counted() -> None:
    backlog = DecodeBacklog(max_lag_s=2.0)
    ticket = backlog.open(now=0.0)
    assert backlog.admit(now=2.0)
    assert not backlog.admit(now=2.01)
    assert not backlog.admit(now=3.0)
    assert backlog.shed == 2
    backlog.caught_up(ticket)  # part decoded: what is left became due at 2.5
    backlog.handed(ticket, now=2.5)
    assert backlog.admit(now=3.0) and backlog.shed == 2


def test_a_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_lag_s must be > 0"):
        DecodeBacklog(max_lag_s=0.0)


class _Stuck(EngineRecognizer):
    """A recognizer whose decoding waits for `go` (a decoder process with no CPU to spare)."""

    go = threading.Event()

    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None: ...
    def _engine_start(self) -> None: ...
    def _engine_feed(self, frame: object) -> None:  # type: ignore[override]
        assert self.go.wait(10)
    def _engine_hypotheses(self, *, final: bool) -> list:  # type: ignore[type-arg]
        return []
    def _engine_abandon(self) -> None: ...


class _Models:
    def spec(self, dialect: str, *, closed: bool = False) -> SimpleNamespace:
        return SimpleNamespace(dialect=dialect, engine=EngineKind.POCKETSPHINX)

    def open(self, dialect: str, *, closed: bool = False) -> _Stuck:
        return _Stuck(dialect)

    def release(self, recognizer: EngineRecognizer) -> None: ...


async def test_the_pool_refuses_new_utterances_while_handed_audio_waits_past_the_bound() -> None:
    clock = FakeClock(100.0)
    pool = DecodePool(1, max_recognizers=4, max_lag_s=2.0, clock=clock)
    _Stuck.go.clear()
    try:
        session = await pool.open_session(_Models(), "en", counted=True)  # type: ignore[arg-type]
        session.feed(np.zeros(1600, np.int16))  # the decode job starts and cannot finish
        await asyncio.sleep(0.01)
        await clock.advance(1.0)
        assert pool.lag_s(clock.now()) == pytest.approx(1.0)
        assert pool.admit(clock.now())
        await clock.advance(1.5)
        assert not pool.admit(clock.now()), "2.5 s behind: a caller starting now is not decoded"
        _Stuck.go.set()  # the decoder catches up
        await asyncio.wait_for(session.wait_decoded(), 5)
        assert pool.lag_s(clock.now()) == 0.0 and pool.admit(clock.now())
        assert pool.backlog.shed == 1
        await session.aclose()
        assert len(pool.backlog) == 0, "a closed session leaves the backlog"
    finally:
        _Stuck.go.set()
        pool.close()


async def test_an_utterance_waiting_for_a_recognizer_counts_as_waiting() -> None:
    clock = FakeClock()
    pool = DecodePool(1, max_recognizers=1, max_lag_s=2.0, clock=clock)
    _Stuck.go.set()
    try:
        held = await pool.open_session(_Models(), "en", counted=True)  # type: ignore[arg-type]
        await held.wait_decoded()
        waiting = asyncio.create_task(pool.open_session(_Models(), "en", counted=True))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        await clock.advance(3.0)
        assert pool.lag_s(clock.now()) >= 3.0 and not pool.admit(clock.now())
        assert pool.lag_s(clock.now()) == pytest.approx(3.0), "the one holding a recognizer has nothing due"
        await held.aclose()
        session = await asyncio.wait_for(waiting, 5)
        assert pool.lag_s(clock.now()) == 0.0, "it has its recognizer and no audio due yet"
        session.feed(np.zeros(1600, np.int16))
        await session.wait_decoded()
        assert pool.lag_s(clock.now()) == 0.0
        await session.aclose()
    finally:
        pool.close()


async def test_audio_held_back_to_fill_a_batch_is_not_waiting_for_the_decoders() -> None:
    clock = FakeClock()
    pool = DecodePool(1, max_recognizers=2, max_lag_s=2.0, clock=clock)
    _Stuck.go.set()
    try:
        session = await pool.open_session(_Models(), "en", batch_samples=1600, counted=True)  # type: ignore[arg-type]
        session.feed(np.zeros(800, np.int16))  # half a batch, then the caller pauses
        await clock.advance(5.0)
        assert pool.lag_s(clock.now()) == 0.0 and pool.admit(clock.now())
        _Stuck.go.clear()
        session.feed(np.zeros(800, np.int16))  # a whole batch: due now, and the decoder is stuck
        await asyncio.sleep(0.01)
        await clock.advance(2.5)
        assert not pool.admit(clock.now())
        _Stuck.go.set()
        await asyncio.wait_for(session.finish(), 5)
        assert pool.lag_s(clock.now()) == 0.0
        await session.aclose()
    finally:
        _Stuck.go.set()
        pool.close()


async def test_a_transcript_decoded_in_one_long_job_is_work_not_lag() -> None:
    clock = FakeClock()
    pool = DecodePool(1, max_recognizers=2, max_lag_s=2.0, clock=clock)
    _Stuck.go.clear()
    try:
        message = await pool.open_session(_Models(), "en")  # type: ignore[arg-type]  # a voice message
        message.feed(np.zeros(60 * 8000, np.int16))
        await asyncio.sleep(0.01)
        await clock.advance(5.0)
        assert pool.lag_s(clock.now()) == 0.0 and pool.admit(clock.now())
        _Stuck.go.set()
        await asyncio.wait_for(message.finish(), 5)
        await message.aclose()
    finally:
        _Stuck.go.set()
        pool.close()
