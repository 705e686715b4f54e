"""A live call's speech input: the endpointer on every received frame, recognizers while the caller speaks.

One `Ears` per call. It listens with the recognizers of every requested language at once (the
call's dialect and the flow's alternates), so an English speaker who states their need after the
Mandarin greeting is heard by the English recognizer. Decoding runs in the shared `DecodePool`;
nothing here blocks the event loop.

Recognizers are borrowed from the process's pool for one utterance, not held for the call: a
PocketSphinx decoder costs ~80 MB and ~0.3 s to build, and callers speak a few seconds a minute,
so a node needs decoders for the utterances in flight, not for every call in its IVR. What the
decoder learned of the caller's channel (its cepstral mean) is kept per call and handed to the
next decoder lent to the same call, so it still carries across turns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import ListenSpec, SpeechInput
from ivr.clock import Clock
from ivr.speech import DecodePool, SpeechModels
from ivr.speech.events import SpeechStarted, UtteranceEnded
from ivr.speech.pool import DecodeSession
from ivr.speech.vad import Endpointer, EndpointerConfig

log = structlog.get_logger(__name__)

FRAME_SAMPLES = 160


@dataclass(slots=True, frozen=True)
class Heard:
    """The recognizers' verdict on one utterance: the most confident non-empty result, or None."""

    speech: SpeechInput | None


EarsEvent = SpeechStarted | UtteranceEnded | Heard
EarsListener = Callable[[EarsEvent], None]


class _Utterance:
    """Recognizers borrowed for one utterance, and the audio that arrived before they were ready."""

    def __init__(self, ears: Ears, languages: Sequence[str], phrases: tuple[str, ...]) -> None:
        self.sessions: list[DecodeSession] = []
        self.pending: list[NDArray[np.int16]] = []
        self.ready = asyncio.get_running_loop().create_task(self._borrow(ears, languages, phrases))

    async def _borrow(self, ears: Ears, languages: Sequence[str], phrases: tuple[str, ...]) -> None:
        for language in languages:
            session = await ears.pool.open_session(ears.models, language)
            self.sessions.append(session)
            await session.restore_acoustic_state(ears.acoustic.get(language))
            await session.set_phrases(phrases)
        for frame in self.pending:
            self._feed(frame)
        self.pending.clear()

    def feed(self, frame: NDArray[np.int16]) -> None:
        if self.ready.done():
            self._feed(frame)
        else:
            self.pending.append(frame)

    def _feed(self, frame: NDArray[np.int16]) -> None:
        for session in self.sessions:
            session.feed(frame)

    async def give_back(self, ears: Ears) -> None:
        """Keep what each recognizer learned of the caller, then return it to the pool."""
        if not self.ready.done():
            self.ready.cancel()
        await asyncio.gather(self.ready, return_exceptions=True)
        for session in self.sessions:
            try:
                ears.acoustic[session.language] = await session.acoustic_state()
                await session.reset()
            finally:
                await session.aclose()
        self.sessions = []


class Ears:
    def __init__(self, pool: DecodePool, models: SpeechModels, clock: Clock) -> None:
        self.pool = pool
        self.models = models
        self.acoustic: dict[str, str | None] = {}
        """Per language: the caller's channel as the last recognizer lent to this call learned it."""
        self._clock = clock
        self._languages: list[str] = []
        self._phrases: tuple[str, ...] = ()
        self._endpointer: Endpointer | None = None
        self._listener: EarsListener | None = None
        self._utterance: _Utterance | None = None
        self._decode: asyncio.Task[None] | None = None

    def available(self, languages: Sequence[str]) -> list[str]:
        """The requested languages we have a recognizer for, in the order asked."""
        have = set(self.models.dialects)
        return [lang for lang in languages if lang in have]

    async def start(self, spec: ListenSpec, listener: EarsListener) -> bool:
        """Begin listening per `spec`; False when no requested language has a recognizer."""
        self._languages = self.available(spec.languages)
        if not self._languages:
            return False
        self._phrases = spec.phrases
        # The turn owns the no-input clock, which starts when the prompt ends; the endpointer only
        # finds where speech starts and ends, so its own no-input timeout must never fire (it
        # would stop listening while a long prompt is still playing).
        config = dataclasses.replace(EndpointerConfig.from_listen_spec(spec), no_input_timeout_s=math.inf)
        self._endpointer = Endpointer(config, now=self._clock.now())
        self._listener = listener
        return True

    def frame(self, frame: NDArray[np.int16]) -> None:
        """One received 20 ms frame (called by the media session on the event loop)."""
        endpointer, listener = self._endpointer, self._listener
        if endpointer is None or listener is None or frame.shape != (FRAME_SAMPLES,):
            return
        was_speaking = endpointer.in_speech
        for event in endpointer.process(frame, self._clock.now()):
            if isinstance(event, SpeechStarted):
                log.info("speech_started", languages=self._languages)
                self._utterance = _Utterance(self, self._languages, self._phrases)
                for start in range(0, len(event.audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                    self._utterance.feed(event.audio[start : start + FRAME_SAMPLES])
                listener(event)
            elif isinstance(event, UtteranceEnded):
                listener(event)
                self._finish()
        if was_speaking and endpointer.in_speech and self._utterance is not None:
            self._utterance.feed(frame)

    def end_utterance(self) -> None:
        """The turn cut an over-long utterance: decode what we have now."""
        if self._endpointer is not None and self._endpointer.in_speech:
            self._finish()

    def _finish(self) -> None:
        self._endpointer = None
        utterance, self._utterance = self._utterance, None
        if utterance is not None:
            self._decode = asyncio.get_running_loop().create_task(self._decide(utterance, self._listener))

    async def _decide(self, utterance: _Utterance, listener: EarsListener | None) -> None:
        try:
            await utterance.ready
            results = await asyncio.gather(*(s.finish() for s in utterance.sessions), return_exceptions=True)
        finally:
            await utterance.give_back(self)
        best: SpeechInput | None = None
        for result in results:
            if isinstance(result, BaseException):
                log.error("recognizer_failed", error=str(result), exc_info=result)
                continue
            if result.text and (best is None or result.confidence > best.confidence):
                best = result.to_speech_input()
        log.info(
            "speech_recognized",
            text=best.text if best else "",
            confidence=round(best.confidence, 3) if best else 0.0,
            language=best.language if best else "",
        )
        if listener is not None:
            listener(Heard(best))

    async def stop(self) -> None:
        """End this listen: drop any utterance in progress and give its recognizers back."""
        self._endpointer = None
        self._listener = None
        if self._decode is not None and not self._decode.done():
            self._decode.cancel()
            await asyncio.gather(self._decode, return_exceptions=True)
        utterance, self._utterance = self._utterance, None
        if utterance is not None:
            await utterance.give_back(self)

    async def aclose(self) -> None:
        await self.stop()
