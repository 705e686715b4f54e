"""Capturing what a caller says on a SIP leg: `Call.capture` for the engine's call (voice messages, prompts).

`Capture` is the pure part: it takes the received 20 ms frames, the keys and the time, and says when
and why the recording ends (a key in `end_keys`, `silence_s` of silence after speech, nothing said for
`no_input_timeout_s`, `max_length_s`). Silence is judged by the same webrtcvad endpointer the
listening turn uses, so "silence" means what it means there. `record_on_leg` is the adapter: beep,
tap the leg's audio and keys, run one timer from `next_deadline`, then transcribe with the call's own
recognizers. A hang-up mid-recording keeps what was said (voicemail does; a caller who says the
message and hangs up without pressing `#` is the common case).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import CallEnded, CallerAudio, CaptureEnd, CaptureSpec, PlaybackResult, SpeechInput
from ivr.clock import Clock
from ivr.engine.ears import Ears
from ivr.media.tones import beep
from ivr.speech.errors import RecognizerError
from ivr.speech.events import EndReason, SpeechStarted, UtteranceEnded
from ivr.speech.vad import Endpointer, EndpointerConfig

log = structlog.get_logger(__name__)

FRAME_SAMPLES = 160
RATE_HZ = 8000
KEPT_SILENCE_S = 0.5
"""Of the silence before the caller's first word and after the last, this much is kept (the rest is cut:
a listener should not sit through the seconds a caller takes to start, nor the silence that ended it)."""


class Capture:
    """One recording's state: frames in, the reason it ended out. Pure: time is passed in."""

    def __init__(self, spec: CaptureSpec, *, now: float) -> None:
        self.spec = spec
        self.started_at = now
        self.ended_by: CaptureEnd | None = None
        self.heard_speech = False
        self._frames: list[NDArray[np.int16]] = []
        self._first_frame = 0
        """Where the kept audio starts: `KEPT_SILENCE_S` before the first speech."""
        self._max_frames = max(1, round(spec.max_length_s * RATE_HZ / FRAME_SAMPLES))
        config = EndpointerConfig(
            no_input_timeout_s=math.inf, end_of_speech_s=spec.silence_s, max_utterance_s=spec.max_length_s + 1.0
        )
        self._endpointer = Endpointer(config, now=now)

    @property
    def done(self) -> bool:
        return self.ended_by is not None

    def frame(self, frame: NDArray[np.int16], now: float) -> CaptureEnd | None:
        """One received frame (160 int16 samples); returns why the recording ended, if it just did."""
        if self.done or frame.shape != (FRAME_SAMPLES,):
            return self.ended_by
        self._frames.append(frame)
        for event in self._endpointer.process(frame, now):
            if isinstance(event, UtteranceEnded):
                if event.reason is EndReason.END_OF_SPEECH:
                    return self._end(CaptureEnd.SILENCE)
            elif isinstance(event, SpeechStarted) and not self.heard_speech:  # now silence ends the message
                self.heard_speech = True
                before_s = max(0.0, now - event.onset_s) + KEPT_SILENCE_S
                self._first_frame = max(0, len(self._frames) - round(before_s * RATE_HZ / FRAME_SAMPLES))
        if len(self._frames) >= self._max_frames:
            return self._end(CaptureEnd.MAX_LENGTH)
        return None

    def key(self, digit: str) -> CaptureEnd | None:
        if not self.done and digit in self.spec.end_keys:
            return self._end(CaptureEnd.TERMINATOR)
        return self.ended_by

    def hung_up(self) -> CaptureEnd:
        return self.ended_by or self._end(CaptureEnd.HANGUP)

    def next_deadline(self) -> float:
        """The max length (on the clock, in case frames stop coming), and the no-input time until speech."""
        deadline = self.started_at + self.spec.max_length_s
        if not self.heard_speech:
            deadline = min(deadline, self.started_at + self.spec.no_input_timeout_s)
        return deadline

    def handle_timer(self, now: float) -> CaptureEnd | None:
        if self.done:
            return self.ended_by
        if now >= self.started_at + self.spec.max_length_s:
            return self._end(CaptureEnd.MAX_LENGTH)
        if not self.heard_speech and now >= self.started_at + self.spec.no_input_timeout_s:
            return self._end(CaptureEnd.NO_INPUT)
        return None

    def _end(self, why: CaptureEnd) -> CaptureEnd:
        self.ended_by = why
        return why

    def audio(self) -> NDArray[np.int16]:
        """What was recorded; leading silence and the trailing silence that ended it are cut to `KEPT_SILENCE_S`.
        Nothing when no speech was heard, however it ended: a caller who hangs up (or presses the end key) before
        saying anything leaves no message of silence, and so no callback nobody asked for."""
        if not self.heard_speech:
            return np.zeros(0, dtype=np.int16)
        frames = self._frames[self._first_frame :]
        if self.ended_by is CaptureEnd.SILENCE:
            cut = round(max(0.0, self.spec.silence_s - KEPT_SILENCE_S) * RATE_HZ / FRAME_SAMPLES)
            frames = frames[: max(0, len(frames) - cut)]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


Transcriber = Callable[[NDArray[np.int16], Sequence[str], Sequence[str]], Awaitable[SpeechInput | None]]
"""(audio, languages, phrases) → the best reading of the audio, or None."""


class RecordableLeg(Protocol):
    """What recording needs of a leg (`ivr.engine.legs.SipMediaLeg` has it all)."""

    @property
    def ended(self) -> bool: ...

    async def wait_ended(self) -> None: ...

    def add_audio_consumer(self, consumer: Callable[..., None]) -> Callable[[], None]: ...

    def take_keys(
        self, reader: Callable[[str], None], *, typeahead: bool = False
    ) -> AbstractContextManager[None]: ...

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult: ...


def ears_transcriber(ears: Ears) -> Transcriber:
    """Transcribe with the call's own recognizers, lent by the process's pool for the one decode."""

    async def transcribe(
        audio: NDArray[np.int16], languages: Sequence[str], phrases: Sequence[str]
    ) -> SpeechInput | None:
        best: SpeechInput | None = None
        for language in ears.available(languages):
            try:
                session = await ears.pool.open_session(ears.models, language)
            except RecognizerError as exc:
                log.error("recording_transcribe_failed", language=language, error=str(exc))
                continue
            try:
                await session.set_phrases(phrases)
                session.feed(audio)
                result = await session.finish()
                await session.reset()
            except RecognizerError as exc:
                log.error("recording_transcribe_failed", language=language, error=str(exc))
                continue
            finally:
                await session.aclose()
            if result.text and (best is None or result.confidence > best.confidence):
                best = result.to_speech_input()
        return best

    return transcribe


async def record_on_leg(
    leg: RecordableLeg, spec: CaptureSpec, clock: Clock, transcribe: Transcriber | None, *, call_id: str = ""
) -> CallerAudio:
    """Beep, record per `spec` until it ends, then transcribe (see the module docstring)."""
    if leg.ended:
        raise CallEnded(f"call {call_id} ended")
    if spec.beep:
        await leg.play_audio(beep(duration_s=0.25))
    capture = Capture(spec, now=clock.now())
    wake = asyncio.Event()

    def on_frame(frame: NDArray[np.int16]) -> None:
        if capture.frame(frame, clock.now()) is not None:
            wake.set()

    def on_key(digit: str) -> None:
        if capture.key(digit) is not None:
            wake.set()

    unsubscribe = leg.add_audio_consumer(on_frame)
    gone = asyncio.ensure_future(leg.wait_ended())
    gone.add_done_callback(lambda _: wake.set())
    try:
        with leg.take_keys(on_key):
            while not capture.done:
                if leg.ended:
                    capture.hung_up()
                    break
                try:
                    async with clock.timeout_at(capture.next_deadline()):
                        await wake.wait()
                except TimeoutError:
                    capture.handle_timer(clock.now())
    finally:
        unsubscribe()
        gone.cancel()
    ended_by = capture.ended_by or CaptureEnd.HANGUP
    audio = capture.audio()
    log.info("caller_recorded", ended_by=ended_by.value, duration_s=round(len(audio) / RATE_HZ, 2))
    heard: SpeechInput | None = None
    if transcribe is not None and spec.transcribe and len(audio) and capture.heard_speech:
        heard = await transcribe(audio, spec.transcribe, spec.phrases)
    return CallerAudio(audio=audio, ended_by=ended_by, transcript=heard)


__all__ = ["Capture", "RecordableLeg", "Transcriber", "ears_transcriber", "record_on_leg"]
