"""`record_on_leg`, the adapter of `Call.capture` on a SIP leg: beep, the leg's frames and keys, timers on the
clock, a hang-up that keeps the message, and transcription handed the recorded audio. FakeClock only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from engine_fakes import FakeLeg
from numpy.typing import NDArray

from ivr.call import CallEnded, CaptureEnd, CaptureSpec, PlaybackOutcome, PlaybackResult, SpeechInput
from ivr.clock import FakeClock
from ivr.engine.capture import record_on_leg


def voiced(seconds: float) -> NDArray[np.int16]:
    t = np.arange(round(seconds * 8000)) / 8000
    sig = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 20))
    return (6000 * sig / np.abs(sig).max()).astype(np.int16)


class RecordableLeg(FakeLeg):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__("leg-1", clock)
        self.beeps: list[int] = []
        self.consumers: list[Callable[[NDArray[np.int16]], None]] = []
        self.listening = asyncio.Event()

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult:
        self.beeps.append(len(audio))
        return PlaybackResult(PlaybackOutcome.COMPLETED, len(audio) / 8000)

    def add_audio_consumer(self, consumer: Callable[..., None]) -> Callable[[], None]:
        self.consumers.append(consumer)
        self.listening.set()
        return lambda: self.consumers.remove(consumer)

    async def speak(self, clock: FakeClock, audio: NDArray[np.int16]) -> None:
        """The caller talks: one frame every 20 ms of clock time."""
        for i in range(0, len(audio) - 159, 160):
            await clock.advance(0.02)
            for consumer in list(self.consumers):
                consumer(audio[i : i + 160])


async def until_listening(leg: RecordableLeg) -> None:
    await leg.listening.wait()


async def test_beep_speech_and_the_end_key_then_a_transcript() -> None:
    clock = FakeClock()
    leg = RecordableLeg(clock)
    heard: list[tuple[int, Sequence[str], Sequence[str]]] = []

    async def transcribe(audio: NDArray[np.int16], langs: Sequence[str], phrases: Sequence[str]) -> SpeechInput:
        heard.append((len(audio), langs, phrases))
        return SpeechInput("call me back", 0.8, "en")

    spec = CaptureSpec(transcribe=("en",), phrases=("call me back",))
    task = asyncio.create_task(record_on_leg(leg, spec, clock, transcribe))
    await until_listening(leg)
    await leg.speak(clock, voiced(1.0))
    leg.press("#")
    recording = await task
    assert leg.beeps == [2000] and leg.consumers == []
    assert recording.ended_by is CaptureEnd.TERMINATOR and recording.transcript is not None
    assert recording.transcript.text == "call me back"
    assert heard == [(len(recording.audio), ("en",), ("call me back",))]


async def test_silence_from_the_start_is_no_input_at_its_deadline() -> None:
    clock = FakeClock()
    leg = RecordableLeg(clock)
    task = asyncio.create_task(record_on_leg(leg, CaptureSpec(beep=False, no_input_timeout_s=4.0), clock, None))
    await until_listening(leg)
    await clock.advance(3.9)
    assert not task.done()
    await clock.advance(0.2)
    recording = await task
    assert recording.ended_by is CaptureEnd.NO_INPUT and len(recording.audio) == 0 and leg.beeps == []


async def test_a_hang_up_keeps_what_was_said() -> None:
    clock = FakeClock()
    leg = RecordableLeg(clock)
    task = asyncio.create_task(record_on_leg(leg, CaptureSpec(), clock, None))
    await until_listening(leg)
    await leg.speak(clock, voiced(0.8))
    leg.hang_up_by_party()
    recording = await task
    assert recording.ended_by is CaptureEnd.HANGUP and len(recording.audio) > 0.6 * 8000


async def test_a_call_already_over_raises() -> None:
    clock = FakeClock()
    leg = RecordableLeg(clock)
    leg.hang_up_by_party()
    with pytest.raises(CallEnded):
        await record_on_leg(leg, CaptureSpec(), clock, None)
