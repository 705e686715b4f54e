"""A live call's speech input: the endpointer on every received frame, recognizers fed while the caller speaks.

One `Ears` per call. It listens with the recognizers of every requested language at once (the
call's dialect and the flow's alternates), so an English speaker who states their need after the
Mandarin greeting is heard by the English recognizer. Decoding runs in the shared `DecodePool`;
nothing here blocks the event loop. Each recognizer lives as long as the call, so its cepstral
mean carries across turns.
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


class Ears:
    def __init__(self, pool: DecodePool, models: SpeechModels, clock: Clock) -> None:
        self._pool = pool
        self._models = models
        self._clock = clock
        self._sessions: dict[str, DecodeSession] = {}
        self._phrases: dict[str, tuple[str, ...]] = {}
        self._endpointer: Endpointer | None = None
        self._listener: EarsListener | None = None
        self._active: list[DecodeSession] = []
        self._decode: asyncio.Task[None] | None = None

    def available(self, languages: Sequence[str]) -> list[str]:
        """The requested languages we have a recognizer for, in the order asked."""
        have = set(self._models.dialects)
        return [lang for lang in languages if lang in have]

    async def start(self, spec: ListenSpec, listener: EarsListener) -> bool:
        """Begin listening per `spec`; False when no requested language has a recognizer."""
        languages = self.available(spec.languages)
        if not languages:
            return False
        self._active = [await self._session(lang) for lang in languages]
        for session in self._active:
            if self._phrases.get(session.language) != spec.phrases:
                await session.set_phrases(spec.phrases)
                self._phrases[session.language] = spec.phrases
        # The turn owns the no-input clock, which starts when the prompt ends; the endpointer only
        # finds where speech starts and ends, so its own no-input timeout must never fire (it
        # would stop listening while a long prompt is still playing).
        config = dataclasses.replace(EndpointerConfig.from_listen_spec(spec), no_input_timeout_s=math.inf)
        self._endpointer = Endpointer(config, now=self._clock.now())
        self._listener = listener
        return True

    async def _session(self, language: str) -> DecodeSession:
        session = self._sessions.get(language)
        if session is None:
            session = await self._pool.open_session(self._models, language)
            self._sessions[language] = session
        return session

    def frame(self, frame: NDArray[np.int16]) -> None:
        """One received 20 ms frame (called by the media session on the event loop)."""
        endpointer, listener = self._endpointer, self._listener
        if endpointer is None or listener is None or frame.shape != (FRAME_SAMPLES,):
            return
        was_speaking = endpointer.in_speech
        for event in endpointer.process(frame, self._clock.now()):
            if isinstance(event, SpeechStarted):
                log.info("speech_started", languages=[session.language for session in self._active])
                for start in range(0, len(event.audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                    self._feed(event.audio[start : start + FRAME_SAMPLES])
                listener(event)
            elif isinstance(event, UtteranceEnded):
                listener(event)
                self._finish()
        if was_speaking and endpointer.in_speech:
            self._feed(frame)

    def _feed(self, frame: NDArray[np.int16]) -> None:
        for session in self._active:
            session.feed(frame)

    def end_utterance(self) -> None:
        """The turn cut an over-long utterance: decode what we have now."""
        if self._endpointer is not None and self._endpointer.in_speech:
            self._finish()

    def _finish(self) -> None:
        self._endpointer = None
        self._decode = asyncio.get_running_loop().create_task(self._decide(self._listener))

    async def _decide(self, listener: EarsListener | None) -> None:
        results = await asyncio.gather(*(s.finish() for s in self._active), return_exceptions=True)
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
        """End this listen: drop any utterance in progress."""
        self._endpointer = None
        self._listener = None
        if self._decode is not None and not self._decode.done():
            self._decode.cancel()
        for session in self._active:
            await session.reset()
        self._active = []

    async def aclose(self) -> None:
        await self.stop()
        for session in self._sessions.values():
            await session.aclose()
        self._sessions.clear()
