"""The decode pool bounds the recognizers open at once per dialect: overload waits, memory stays flat."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from ivr.speech.pool import DecodePool
from ivr.speech.recognizer import EngineKind, EngineRecognizer


class _Rec(EngineRecognizer):
    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None: ...
    def _engine_start(self) -> None: ...
    def _engine_feed(self, frame: object) -> None: ...  # type: ignore[override]
    def _engine_hypotheses(self, *, final: bool) -> list:  # type: ignore[type-arg]
        return []
    def _engine_abandon(self) -> None: ...


class _Models:
    def __init__(self) -> None:
        self.opened = 0
        self.released = 0

    def spec(self, dialect: str, *, closed: bool = False) -> SimpleNamespace:
        return SimpleNamespace(dialect=dialect, engine=EngineKind.POCKETSPHINX)

    def open(self, dialect: str, *, closed: bool = False) -> _Rec:
        self.opened += 1
        return _Rec(dialect)

    def release(self, recognizer: EngineRecognizer) -> None:
        self.released += 1


async def test_a_third_utterance_waits_for_one_of_two_recognizers() -> None:
    models = _Models()
    pool = DecodePool(1, max_recognizers=2)
    try:
        first = await pool.open_session(models, "en")  # type: ignore[arg-type]
        second = await pool.open_session(models, "en")  # type: ignore[arg-type]
        third = asyncio.create_task(pool.open_session(models, "en"))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not third.done() and models.opened == 2
        await first.aclose()
        session = await asyncio.wait_for(third, 5)
        assert models.opened == 3 and models.released == 1
        other = await asyncio.wait_for(pool.open_session(models, "ko"), 5)  # type: ignore[arg-type]
        for s in (second, session, other):
            await s.aclose()
        assert models.released == 4
    finally:
        pool.close()


async def test_streaming_stops_short_of_the_places_kept_for_finished_utterances() -> None:
    models = _Models()
    pool = DecodePool(1, max_recognizers=8)
    assert pool.batch_reserve == 1
    try:
        held = []
        while pool.can_stream(["en"]):
            held.append(await pool.open_session(models, "en"))  # type: ignore[arg-type]
        assert len(held) == 7, "one place of eight is left for decoding finished utterances"
        assert pool.can_stream(["ko"]), "each dialect has its own places"
        assert not pool.can_stream(["ko", "en"]), "a listen in two languages needs places in both"
        await held.pop().aclose()
        assert pool.can_stream(["en"]), "a returned recognizer frees its place for streaming again"
        for s in held:
            await s.aclose()
    finally:
        pool.close()
