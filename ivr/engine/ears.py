"""A live call's speech input: the endpointer on every received frame, recognizers while the caller speaks.

One `Ears` per call. It listens with the recognizers of every requested language at once (the
call's dialect and the flow's alternates), so an English speaker who states their need after the
Mandarin greeting is heard by the English recognizer. Decoding runs in the shared `DecodePool`;
nothing here blocks the event loop.

Recognizers are lent by the process's bounded pool rather than held per call (a decoder per call
grew the engine to 11.6 GB at 10 cps when a PocketSphinx decoder cost ~80 MB; Vosk recognizers
are not small either). When the caller starts talking and the pool has places to spare, the utterance borrows
its recognizers at once and they decode while the caller talks, so the verdict is ready a few
tens of milliseconds after the end of speech. When the pool is busy, the utterance is kept and
decoded after it ends, with recognizers that are held only for that decode (~0.1 s for a 3 s
need): under overload callers wait a little longer, and memory stays bounded. What a recognizer
learned of the caller's channel (its cepstral mean) is kept per call and handed to the next one
lent to the same call, so it still carries across turns.

Under overload a caller is not made to wait for decoders that are already behind: when a caller starts
speaking and the pool's oldest undecoded audio has waited past its bound (`DecodePool.admit`), the utterance
is not decoded and is answered at its end as shed (`SpeechInput.shed`): the flow serves that turn by keys or
a human. Utterances already admitted keep their place. Measured in bench/RESULTS.md "speech_load".

A dialect may hear its closed turns (`ListenSpec.closed`: the answers a re-ask named) with another engine than its
open ones (`ModelSpec.answers`: Whisper for a need, PocketSphinx searching only the answers for a one-word reply).
Everything that depends on the engine follows the turn's (`Ears.engine`): the front end, whether the recognizer is
told of pauses, and the caller's channel kept between turns, which is kept per engine (a PocketSphinx cepstral mean
means nothing to Whisper).

Between the endpointer and PocketSphinx recognizers, each utterance passes a front end
(`ivr.speech.frontend`): one gain per utterance sets the caller's level, and clipped peaks are redrawn. A
loud or quiet caller lost 20 of 50 points of right intents on the dev split without it (bench/RESULTS.md
"Front end").
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
from ivr.speech.errors import RecognizerError
from ivr.speech.events import SpeechStarted, UtteranceEnded
from ivr.speech.frontend import FrontEndConfig, UtteranceFrontEnd
from ivr.speech.pool import STREAM_BATCH_SAMPLES, DecodeSession
from ivr.speech.recognizer import EngineKind, RecognitionResult
from ivr.speech.vad import Endpointer, EndpointerConfig

log = structlog.get_logger(__name__)

FRAME_SAMPLES = 160
KEPT_PAUSE_S = 0.3
"""Of each pause in an utterance, the recognizers hear only this much: the rest of the end-of-speech wait
(0.7 s by default) and of any longer pause mid-sentence is silence the decoder would score frame by frame
for nothing (a fifth of a short need's audio)."""


@dataclass(slots=True, frozen=True)
class Heard:
    """The recognizers' verdict on one utterance: the most confident non-empty result, or None; for an utterance
    the pool had no room for, an empty `SpeechInput` with `shed` set."""

    speech: SpeechInput | None


EarsEvent = SpeechStarted | UtteranceEnded | Heard
EarsListener = Callable[[EarsEvent], None]


class _Utterance:
    """One utterance's audio and the recognizers lent to decode it.

    Streaming (`listen_along`): recognizers are borrowed when speech starts, fed what was heard so
    far and then every frame as it arrives. Otherwise, or when borrowing failed, `decide` borrows
    them after the end of speech and feeds the whole utterance at once.
    """

    def __init__(self, ears: Ears, first_audio: NDArray[np.int16]) -> None:
        self._ears = ears
        self._languages = tuple(ears.languages)
        self._phrases = ears.phrases
        self._closed = ears.closed
        self._engines = {language: ears.engine(language) for language in self._languages}
        """Per language: the engine that hears this utterance (the turn's, `Ears.engine`)."""
        self._conditioned = {language: ears.conditions(language) for language in self._languages}
        """Per language: whether its recognizer hears the front end's output (else the audio as received)."""
        self._front = UtteranceFrontEnd(ears.front_end) if any(self._conditioned.values()) else None
        self._audio: dict[bool, list[NDArray[np.int16]]] = {True: [], False: []}
        """What each kind of recognizer hears, so far: conditioned by the front end (True) or as received."""
        self._sessions: list[DecodeSession] = []
        self._streaming = False
        self._borrowing: asyncio.Task[None] | None = None
        self._settles = {language: not engine.streams for language, engine in self._engines.items()}
        """Per language: whether its recognizer decodes whole utterances (so it is told when the caller pauses)."""
        self._settling: list[asyncio.Task[None]] = []
        self._settled = False
        """The recognizers were told of the current pause (cleared by the next audio they hear)."""
        self.add(first_audio)

    def listen_along(self) -> None:
        """Borrow recognizers now and decode while the caller is still talking."""
        self._borrowing = asyncio.get_running_loop().create_task(self._borrow(), name="ears-borrow")

    def add(self, frame: NDArray[np.int16]) -> None:
        self._settled = False
        if self._front is not None:
            self._hear(self._front.push(frame), conditioned=True)
        if not all(self._conditioned.values()):
            self._hear(frame, conditioned=False)

    def paused(self) -> None:
        """The caller's pause has outlasted what the recognizers hear of one (`KEPT_PAUSE_S`): unless speech
        resumes, they have the whole utterance, and one that decodes whole utterances (Whisper) starts now, in the
        rest of the endpointer's wait, so its verdict is ready about when the end of speech is declared."""
        if self._settled or not self._streaming:
            return
        self._settled = True
        loop = asyncio.get_running_loop()
        for session in self._sessions:
            if self._settles[session.language]:
                self._settling.append(loop.create_task(session.settle(), name="ears-settle"))

    def _hear(self, audio: NDArray[np.int16], *, conditioned: bool) -> None:
        if not audio.size:
            return
        self._audio[conditioned].append(audio)
        if self._streaming:
            for session in self._sessions:
                if self._conditioned[session.language] is conditioned:
                    session.feed(audio)

    async def decide(self) -> list[object]:
        """Every recognizer's final result for the utterance (an exception where one failed). The recognizers stay
        lent until `drop`: giving them back takes pool jobs, which the caller's verdict need not wait for."""
        try:
            if self._front is not None:
                self._hear(self._front.flush(), conditioned=True)
            if self._borrowing is not None:
                try:
                    await self._borrowing
                except RecognizerError as exc:
                    log.warning("streaming_decode_failed", error=str(exc))
                    await self._give_back()
            if not self._streaming:
                await self._borrow()
            return list(await asyncio.gather(*(s.finish() for s in self._sessions), return_exceptions=True))
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Give the recognizers back (also when the listen ends before the utterance does)."""
        if self._borrowing is not None and not self._borrowing.done():
            self._borrowing.cancel()
            await asyncio.gather(self._borrowing, return_exceptions=True)
        # Not cancelled: a decode already running in the pool would go on after its session's lock was let go.
        settling, self._settling = self._settling, []
        for failed in await asyncio.gather(*settling, return_exceptions=True):
            if isinstance(failed, BaseException):  # `finish` meets the same failure and reports it
                log.info("early_decode_failed", error=str(failed))
        await self._give_back()

    async def _borrow(self) -> None:
        ears = self._ears
        await ears.given_back()  # the last utterance's recognizers are back, and what they learned of the caller kept
        for language in self._languages:
            session = await ears.pool.open_session(
                ears.models, language, closed=self._closed, batch_samples=STREAM_BATCH_SAMPLES, counted=True)
            self._sessions.append(session)
            await session.restore_acoustic_state(ears.acoustic.get((language, self._engines[language])))
            await session.set_phrases(self._phrases)
        for session in self._sessions:
            heard = self._audio[self._conditioned[session.language]]
            if heard:  # the front end may still hold the start of the utterance
                session.feed(np.concatenate(heard))
        self._streaming = True

    async def _give_back(self) -> None:
        """Keep what each recognizer learned of the caller, then return it to the pool."""
        self._streaming = False
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            try:
                self._ears.acoustic[session.language, self._engines[session.language]] = await session.acoustic_state()
                await session.reset()
            except RecognizerError as exc:
                log.warning("recognizer_reset_failed", language=session.language, error=str(exc))
            finally:
                await session.aclose()


class Ears:
    def __init__(
        self, pool: DecodePool, models: SpeechModels, clock: Clock, *, front_end: FrontEndConfig | None = None
    ) -> None:
        self.pool = pool
        self.models = models
        self.front_end = front_end or FrontEndConfig()
        """How each utterance's audio is conditioned before the recognizers hear it."""
        self.acoustic: dict[tuple[str, EngineKind], str | None] = {}
        """Per language and engine: the caller's channel as the last recognizer of it lent to this call learned it."""
        self.languages: list[str] = []
        self.phrases: tuple[str, ...] = ()
        self.closed = False
        """The turn's phrases are its whole answer set (`ListenSpec.closed`)."""
        self._clock = clock
        self._endpointer: Endpointer | None = None
        self._listener: EarsListener | None = None
        self._utterance: _Utterance | None = None
        """The utterance the caller is speaking now."""
        self._shed = False
        """The caller is speaking an utterance the pool refused (`DecodePool.admit`): it is not decoded."""
        self._decode: asyncio.Task[None] | None = None
        self._giving_back: asyncio.Task[None] | None = None
        """The decided utterance's recognizers going back to the pool, after its verdict was reported."""

    def engine(self, language: str) -> EngineKind:
        """The engine that hears `language` in this turn (its answers engine in a closed turn, if it has one)."""
        return self.models.spec(language, closed=self.closed).engine

    def conditions(self, language: str) -> bool:
        """Whether `language`'s recognizer hears the front end's output: PocketSphinx's does (its fixed initial
        cepstral mean is what made the caller's level matter); Vosk's Kaldi normalises its features online,
        and a Korean need fell under the act threshold with the front end, so it hears the audio as received."""
        return self.engine(language) is EngineKind.POCKETSPHINX

    def available(self, languages: Sequence[str]) -> list[str]:
        """The requested languages we have a recognizer for, in the order asked."""
        have = set(self.models.dialects)
        return [lang for lang in languages if lang in have]

    async def start(self, spec: ListenSpec, listener: EarsListener) -> bool:
        """Begin listening per `spec`; False when no requested language has a recognizer."""
        self.languages = self.available(spec.languages)
        if not self.languages:
            return False
        self.phrases = spec.phrases
        self.closed = spec.closed
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
        events = endpointer.process(frame, self._clock.now())
        utterance = self._utterance
        if utterance is not None and endpointer.in_speech:
            if endpointer.pause_s <= KEPT_PAUSE_S:
                utterance.add(frame)
            else:
                utterance.paused()
        for event in events:
            if isinstance(event, SpeechStarted):
                now = self._clock.now()
                if not self.pool.admit(now):
                    log.warning("speech_shed", languages=self.languages, lag_s=round(self.pool.lag_s(now), 3))
                    self._shed = True
                    listener(event)
                    continue
                streaming = self.pool.can_stream(self.languages)
                log.info("speech_started", languages=self.languages, streaming=streaming,
                         engines=[self.engine(language).value for language in self.languages])
                self._utterance = _Utterance(self, event.audio)
                if streaming:
                    self._utterance.listen_along()
                listener(event)
            elif isinstance(event, UtteranceEnded):
                listener(event)
                self._finish()

    def end_utterance(self) -> None:
        """The turn cut an over-long utterance: decide on what we have now."""
        if self._endpointer is not None and self._endpointer.in_speech:
            self._finish()

    def _finish(self) -> None:
        self._endpointer = None
        if self._shed:
            self._shed = False
            if self._listener is not None:
                self._listener(Heard(SpeechInput("", 0.0, self.languages[0], shed=True)))
            return
        utterance, self._utterance = self._utterance, None
        if utterance is not None:
            self._decode = asyncio.get_running_loop().create_task(self._decide(utterance, self._listener))

    async def _decide(self, utterance: _Utterance, listener: EarsListener | None) -> None:
        try:
            results = await utterance.decide()
        except RecognizerError as exc:  # no recognizer could be had (a decoder process failing to
            results = [exc]  # start): the caller hears a no-match at once, not a decode timeout
        # The verdict first: giving the recognizers back is three jobs each on the decode pool, which queue behind other
        # callers' decodes (ten Whisper callers ending together each waited for the last of ten decodes: RESULTS.md).
        self._giving_back = asyncio.get_running_loop().create_task(self._give_back(utterance), name="ears-give-back")
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

    async def _give_back(self, utterance: _Utterance) -> None:
        try:
            await utterance.drop()
        except RecognizerError as exc:
            log.warning("recognizer_release_failed", error=str(exc))

    async def given_back(self) -> None:
        """Return once the last decided utterance's recognizers are back in the pool (never cancels that)."""
        if self._giving_back is not None:
            await asyncio.shield(self._giving_back)

    async def stop(self) -> None:
        """End this listen: drop any utterance in progress (its recognizers go back to the pool)."""
        self._endpointer = None
        self._listener = None
        self._shed = False
        utterance, self._utterance = self._utterance, None
        if utterance is not None:
            await utterance.drop()
        if self._decode is not None and not self._decode.done():
            self._decode.cancel()
            await asyncio.gather(self._decode, return_exceptions=True)
        await self.given_back()

    async def aclose(self) -> None:
        await self.stop()
