"""The streaming `Recognizer` protocol, its result type, and the part every engine shares.

A recognizer is blocking C code (PocketSphinx, Kaldi, CTranslate2's Whisper, ONNX Runtime's Moonshine): it is fed
call audio (20 ms frames of 8 kHz int16) and asked for the current partial or the final hypothesis. It never runs
on the event loop: `ivr.speech.pool` runs it in a bounded worker pool, one utterance at a time per call.

Engines differ only in how they start an utterance, take audio and read hypotheses; the shared
`EngineRecognizer` base keeps the bookkeeping (audio duration, phrase list, result shape) in one place.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis, SpeechInput
from ivr.speech.errors import RecognizerError

__all__ = [
    "CALL_RATE_HZ",
    "EngineKind",
    "EngineRecognizer",
    "RecognitionResult",
    "Recognizer",
    "normalize_phrases",
    "normalize_text",
]

CALL_RATE_HZ = 8000
"""Sample rate of call audio as it reaches a recognizer."""


class EngineKind(enum.Enum):
    POCKETSPHINX = "pocketsphinx"
    VOSK = "vosk"
    WHISPER = "whisper"
    MOONSHINE = "moonshine"

    @property
    def streams(self) -> bool:
        """Whether the engine decodes while the caller talks (else it decodes the whole utterance: `settle`,
        `ivr.speech.whole`)."""
        return self not in (EngineKind.WHISPER, EngineKind.MOONSHINE)


@dataclass(slots=True, frozen=True)
class RecognitionResult:
    """What a recognizer heard so far (partial) or in the whole utterance (final)."""

    text: str
    """Best hypothesis, lower-cased words separated by single spaces ('' when nothing was heard)."""
    confidence: float
    """Engine confidence of `text`, 0..1."""
    final: bool
    """True for the utterance's final result, False for a partial."""
    language: str
    """Dialect code of the recognizer."""
    nbest: tuple[Hypothesis, ...] = ()
    """Distinct alternatives best first (the first is `text`), when the engine gives them."""
    audio_s: float = 0.0
    """Seconds of call audio fed for this utterance."""

    def to_speech_input(self) -> SpeechInput:
        """The `ivr.call.SpeechInput` a flow receives."""
        return SpeechInput(
            text=self.text,
            confidence=self.confidence,
            language=self.language,
            nbest=self.nbest,
            duration_s=self.audio_s,
        )


@runtime_checkable
class Recognizer(Protocol):
    """A streaming recognizer for one call (blocking; run it through `DecodePool`)."""

    @property
    def language(self) -> str: ...

    def set_phrases(self, phrases: Sequence[str]) -> None:
        """Bias the next utterances toward these phrases; an empty sequence means free decoding."""
        ...

    def accept(self, frame: npt.NDArray[np.int16]) -> None:
        """Feed call audio (8 kHz int16, any length; 160 samples per 20 ms frame)."""
        ...

    def partial(self) -> RecognitionResult:
        """The hypothesis so far in the current utterance."""
        ...

    def finish(self) -> RecognitionResult:
        """End the utterance and return its final result; the next `accept` starts a new one."""
        ...

    def settle(self) -> RecognitionResult | None:
        """The caller paused: an engine that decodes whole utterances may decode what it has now and return the
        result `finish` will give unless more audio comes (the utterance stays open); None: nothing decoded ahead
        (a streaming engine ignores the pause)."""
        ...

    def reset(self) -> None:
        """Abandon the current utterance (barge-in cancelled, call moved on)."""
        ...

    def close(self) -> None:
        """Release engine resources; the recognizer is unusable afterwards."""
        ...

    def acoustic_state(self) -> str | None:
        """The caller's channel as the engine learned it (carried to the next utterance)."""
        ...

    def restore_acoustic_state(self, state: str | None) -> None:
        """Start from `state` (None: the engine's default)."""
        ...


_PHRASE_JUNK_RE = re.compile(r"[^\w\s']+")


def normalize_text(text: str) -> str:
    """Lower-case words without punctuation but apostrophes, single spaces: how phrases and readings compare."""
    return " ".join(_PHRASE_JUNK_RE.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def normalize_phrases(phrases: Sequence[str]) -> tuple[str, ...]:
    """`normalize_text` each, without empty ones and duplicates, in order: the form grammars are built from."""
    seen: dict[str, None] = {}
    for p in phrases:
        t = normalize_text(p)
        if t:
            seen.setdefault(t, None)
    return tuple(seen)


class EngineRecognizer(ABC):
    """Shared bookkeeping for engine adapters: subclasses implement the five `_engine_*` hooks."""

    def __init__(self, language: str) -> None:
        self._language = language
        self._phrases: tuple[str, ...] = ()
        self._samples = 0
        self._in_utterance = False

    @property
    def language(self) -> str:
        return self._language

    @property
    def phrases(self) -> tuple[str, ...]:
        return self._phrases

    def set_phrases(self, phrases: Sequence[str]) -> None:
        normalized = normalize_phrases(phrases)
        if normalized != self._phrases:
            self._phrases = normalized
            self._engine_set_phrases(normalized)

    def accept(self, frame: npt.NDArray[np.int16]) -> None:
        if frame.dtype != np.int16:
            raise TypeError(f"recognizer audio must be int16, got {frame.dtype}")
        if not self._in_utterance:
            self._engine_start()
            self._in_utterance = True
            self._samples = 0
        self._samples += int(frame.shape[0])
        try:
            self._engine_feed(frame)
        except RuntimeError as exc:
            raise RecognizerError(
                f"{type(self).__name__} for {self._language!r} failed to decode: {exc}"
            ) from exc

    def partial(self) -> RecognitionResult:
        if not self._in_utterance:
            return self._result((), final=False)
        return self._result(self._engine_hypotheses(final=False), final=False)

    def finish(self) -> RecognitionResult:
        if not self._in_utterance:
            return self._result((), final=True)
        self._in_utterance = False
        try:
            hyps = self._engine_hypotheses(final=True)
        except RuntimeError as exc:
            raise RecognizerError(
                f"{type(self).__name__} for {self._language!r} failed to finish: {exc}"
            ) from exc
        return self._result(hyps, final=True)

    def settle(self) -> RecognitionResult | None:
        if not self._in_utterance:
            return None
        try:
            hyps = self._engine_settle()
        except RuntimeError as exc:
            raise RecognizerError(
                f"{type(self).__name__} for {self._language!r} failed to decode: {exc}"
            ) from exc
        return None if hyps is None else self._result(hyps, final=True)

    def _engine_settle(self) -> list[Hypothesis] | None:
        """Decode the utterance so far ahead of `finish` and return the hypotheses `finish` gives unless more audio
        comes (engines that decode whole utterances); None: nothing decoded ahead."""
        return None

    def reset(self) -> None:
        if self._in_utterance:
            self._engine_abandon()
        self._in_utterance = False
        self._samples = 0

    def close(self) -> None:
        self.reset()

    def acoustic_state(self) -> str | None:
        """What the engine learned of this caller's channel (PocketSphinx: the cepstral mean), so
        a pooled recognizer lent to the same call later can start where this one left off."""
        return None

    def restore_acoustic_state(self, state: str | None) -> None:  # noqa: B027 - optional hook
        """Start from a state `acoustic_state` gave (None: the engine's default)."""
        return None

    def _result(self, hyps: Sequence[Hypothesis], *, final: bool) -> RecognitionResult:
        distinct: dict[str, Hypothesis] = {}
        for h in hyps:
            text = " ".join(h.text.split())
            if text not in distinct:
                distinct[text] = Hypothesis(text, min(1.0, max(0.0, h.confidence)))
        nbest = tuple(h for h in distinct.values() if h.text)
        best = nbest[0] if nbest else Hypothesis("", 0.0)
        return RecognitionResult(
            text=best.text,
            confidence=best.confidence,
            final=final,
            language=self._language,
            nbest=nbest,
            audio_s=self._samples / CALL_RATE_HZ,
        )

    @abstractmethod
    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Switch the engine's search to these (normalized) phrases; () means free decoding."""

    @abstractmethod
    def _engine_start(self) -> None:
        """Begin an utterance."""

    @abstractmethod
    def _engine_feed(self, frame: npt.NDArray[np.int16]) -> None:
        """Decode 8 kHz audio."""

    @abstractmethod
    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        """Hypotheses best first; when `final`, also end the engine's utterance."""

    @abstractmethod
    def _engine_abandon(self) -> None:
        """Drop the current utterance."""
