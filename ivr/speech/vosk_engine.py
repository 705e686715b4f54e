"""Vosk (Kaldi) adapter: the production engine, one model per dialect, shared by every call.

A Vosk model takes seconds and hundreds of MB to load, so `VoskModel.load` is called once per
process per model folder (`ivr.speech.models.SpeechModels` does that) and every call's
`KaldiRecognizer` shares it. Phrase biasing uses Vosk's runtime grammar: the recognizer is given the
phrases plus `[unk]`, with words the model's vocabulary lacks dropped (Kaldi ignores them anyway,
noisily). Vosk decodes 8 kHz audio directly (it resamples in its feature pipeline).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis
from ivr.speech.errors import RecognizerError, SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ, EngineRecognizer

__all__ = ["VoskModel", "VoskRecognizer"]

_UNKNOWN = "[unk]"


@dataclass(slots=True, frozen=True)
class VoskModel:
    """A loaded Vosk model and the dialect it serves."""

    dialect: str
    path: Path
    model: Any
    """The `vosk.Model` (shared, read-only across recognizers and threads)."""

    @classmethod
    def load(cls, dialect: str, path: Path | str) -> VoskModel:
        """Load a model folder; `SpeechModelError` names the dialect and path when it cannot."""
        root = Path(path)
        try:
            import vosk
        except ImportError as exc:
            raise SpeechModelError(
                dialect, root, "the vosk package is not installed (pip install vosk)"
            ) from exc
        if not root.is_dir():
            raise SpeechModelError(dialect, root, "model folder does not exist")
        if not (root / "am").is_dir() and not (root / "final.mdl").is_file():
            raise SpeechModelError(dialect, root, "not a Vosk model folder (no am/ inside)")
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(root))
        except Exception as exc:  # vosk raises bare Exception("Failed to create a model")
            raise SpeechModelError(dialect, root, f"Vosk could not load it: {exc}") from exc
        return cls(dialect=dialect, path=root, model=model)

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has `word` (grammar words must be in it)."""
        return int(self.model.vosk_model_find_word(word)) >= 0


class VoskRecognizer(EngineRecognizer):
    """A streaming Kaldi recognizer for one call over a shared `VoskModel`."""

    def __init__(self, model: VoskModel, *, language: str | None = None, max_alternatives: int = 3) -> None:
        super().__init__(language or model.dialect)
        self._model = model
        self._max_alternatives = max_alternatives
        self._grammar: str | None = None
        self._rec: Any = None

    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None:
        if not phrases:
            self._grammar = None
            return
        kept = [k for p in phrases if (k := " ".join(w for w in p.split() if self._model.knows(w)))]
        if not kept:
            raise RecognizerError(
                f"none of the {len(phrases)} phrases for dialect {self.language!r} has a word in "
                f"the vocabulary of the Vosk model at {self._model.path}"
            )
        unknown = [_UNKNOWN] if self._model.knows(_UNKNOWN) else []
        self._grammar = json.dumps([*dict.fromkeys(kept), *unknown], ensure_ascii=False)
        self._rec = None

    def _engine_start(self) -> None:
        # One KaldiRecognizer per grammar, reused: FinalResult() readies it for the next utterance.
        if self._rec is not None:
            return
        import vosk

        if self._grammar is None:
            rec = vosk.KaldiRecognizer(self._model.model, float(CALL_RATE_HZ))
        else:
            rec = vosk.KaldiRecognizer(self._model.model, float(CALL_RATE_HZ), self._grammar)
        rec.SetMaxAlternatives(self._max_alternatives)
        self._rec = rec

    def _engine_feed(self, frame: npt.NDArray[np.int16]) -> None:
        self._rec.AcceptWaveform(np.ascontiguousarray(frame, dtype=np.int16).tobytes())

    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        if not final:
            partial = json.loads(self._rec.PartialResult()).get("partial", "")
            return [Hypothesis(_clean(partial), 0.5)] if partial else []
        return _alternatives(json.loads(self._rec.FinalResult()))

    def _engine_abandon(self) -> None:
        self._rec.Reset()

    def close(self) -> None:
        super().close()
        self._rec = None


def _clean(text: str) -> str:
    return " ".join(w for w in text.split() if w != _UNKNOWN)


def _alternatives(result: dict[str, Any]) -> list[Hypothesis]:
    """Vosk's n-best carries lattice scores, not probabilities: softmax them into 0..1 posteriors."""
    alts = result.get("alternatives")
    if not alts:
        text = _clean(str(result.get("text", "")))
        return [Hypothesis(text, 0.5)] if text else []
    scores = [float(a.get("confidence", 0.0)) for a in alts]
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    hyps = [Hypothesis(_clean(str(a.get("text", ""))), w / total) for a, w in zip(alts, weights, strict=True)]
    return [h for h in hyps if h.text]
