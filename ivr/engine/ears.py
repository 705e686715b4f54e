"""A live call's speech input: the endpointer on every received frame, recognizers while the caller speaks.

One `Ears` per call. It listens with the recognizers of every requested language at once (the
call's dialect and the flow's alternates), so an English speaker who states their need after the
Mandarin greeting is heard by the English recognizer. Decoding runs in the shared `DecodePool`;
nothing here blocks the event loop.

Recognizers are borrowed from the process's bounded pool only while an utterance is decoded,
after the endpointer has found its end: a PocketSphinx decoder costs ~80 MB and ~0.3 s to build
and decodes at ~1/25 of real time, so holding one per call (or per caller still talking) would
need hundreds for a busy IVR, while decoding finished utterances needs a handful (measured: 200
calls at 10 cps grew the engine to 11.6 GB with a decoder per call; holding decoders while
callers talked recognized 12 of 166 needs). The price is latency: decoding starts at the end of
speech instead of keeping up with it (~0.1 s for a 3 s need). What the decoder learned of the
caller's channel (its cepstral mean) is kept per call and handed to the next decoder lent to the
same call, so it still carries across turns.
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
from ivr.speech.recognizer import RecognitionResult
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
    """Recognizers borrowed to decode one finished utterance, then given back."""

    def __init__(self, audio: NDArray[np.int16]) -> None:
        self.audio = audio
        self.sessions: list[DecodeSession] = []

    async def decode(self, ears: Ears, languages: Sequence[str], phrases: tuple[str, ...]) -> list[object]:
        try:
            for language in languages:
                session = await ears.pool.open_session(ears.models, language)
                self.sessions.append(session)
                await session.restore_acoustic_state(ears.acoustic.get(language))
                await session.set_phrases(phrases)
                for start in range(0, len(self.audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                    session.feed(self.audio[start : start + FRAME_SAMPLES])
            return list(await asyncio.gather(*(s.finish() for s in self.sessions), return_exceptions=True))
        finally:
            await self.give_back(ears)

    async def give_back(self, ears: Ears) -> None:
        """Keep what each recognizer learned of the caller, then return it to the pool."""
        sessions, self.sessions = self.sessions, []
        for session in sessions:
            try:
                ears.acoustic[session.language] = await session.acoustic_state()
                await session.reset()
            finally:
                await session.aclose()


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
        self._heard: list[NDArray[np.int16]] = []
        """The utterance so far (pre-roll included), while the caller speaks."""
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
                self._heard = [event.audio]
                listener(event)
            elif isinstance(event, UtteranceEnded):
                listener(event)
                self._heard = [event.audio]
                self._finish()
        if was_speaking and endpointer.in_speech:
            self._heard.append(frame)

    def end_utterance(self) -> None:
        """The turn cut an over-long utterance: decode what we have now."""
        if self._endpointer is not None and self._endpointer.in_speech:
            self._finish()

    def _finish(self) -> None:
        self._endpointer = None
        audio = np.concatenate(self._heard) if self._heard else np.zeros(0, dtype=np.int16)
        self._heard = []
        utterance = _Utterance(audio)
        self._decode = asyncio.get_running_loop().create_task(self._decide(utterance, self._listener))

    async def _decide(self, utterance: _Utterance, listener: EarsListener | None) -> None:
        results = await utterance.decode(self, self._languages, self._phrases)
        best: SpeechInput | None = None
        for result in results:
            if isinstance(result, BaseException):
                log.error("recognizer_failed", error=str(result), exc_info=result)
                continue
            assert isinstance(result, RecognitionResult)
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
        """End this listen: drop any utterance in progress (its recognizers go back to the pool)."""
        self._endpointer = None
        self._listener = None
        self._heard = []
        if self._decode is not None and not self._decode.done():
            self._decode.cancel()
            await asyncio.gather(self._decode, return_exceptions=True)

    async def aclose(self) -> None:
        await self.stop()
