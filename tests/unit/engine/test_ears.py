"""The call's ears hear speech however long the prompt before it lasted."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

from ivr.call import ListenSpec
from ivr.clock import FakeClock
from ivr.engine.ears import Ears, EarsEvent
from ivr.media import load_telephony
from ivr.speech.events import SpeechStarted

SPEECH = pathlib.Path(__file__).resolve().parents[2] / "data" / "speech"


class _Session:
    language = "en"

    def __init__(self) -> None:
        self.fed = 0

    def feed(self, frame: object) -> None:
        self.fed += 1

    async def set_phrases(self, phrases: Sequence[str]) -> None:
        pass

    async def reset(self) -> None:
        pass


class _Pool:
    def __init__(self) -> None:
        self.session = _Session()

    async def open_session(self, models: object, dialect: str) -> _Session:
        return self.session


class _Models:
    dialects = ("en",)


async def test_speech_after_a_prompt_longer_than_the_no_input_timeout_is_heard() -> None:
    clock = FakeClock()
    pool = _Pool()
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("cmn", "en"), no_input_timeout_s=5.0), events.append)
    silence = np.zeros(160, dtype=np.int16)
    for _ in range(14 * 50):  # a 14-second prompt plays; the caller listens quietly
        ears.frame(silence)
        await clock.advance(0.02)
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    for start in range(0, len(speech) - 160, 160):
        ears.frame(speech[start : start + 160])
        await clock.advance(0.02)
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert pool.session.fed > 0
