"""Whole-utterance decoding: what the English recognizers that decode only once the caller stops share.

Whisper (`ivr.speech.whisper_engine`) and Moonshine (`ivr.speech.moonshine_engine`) do not stream: a
`WholeRecognizer` gathers the utterance (at most `MAX_UTTERANCE_S`) and hands it, at the caller's pause (`settle`)
or at `finish`, to a `WholeDecoder`: the engine's model loaded in this process, or the decoder processes
(`ivr.speech.hosts.HostedDecoder`). Each engine's model only turns 8 kHz audio into the beam's `Scored` hypotheses;
what is done around that is the same for both, and lives here:

* a little silence either side of the utterance (`LEAD_PAD_S`, `TRAIL_PAD_S`: `wideband`; Whisper's, Moonshine has
  its own), then 16 kHz (soxr);
* a reading that ends in a loop is cut to its first run (`collapse_loop`), words as the other engines give them
  (`normalize_reading`);
* confidence (`nbest_weights`): the beam's hypotheses, each weighted by its share of the beam's probability mass
  (softmax of the total log-probabilities) times the best hypothesis's geometric-mean token probability raised to
  `TOKEN_POWER`; so the weights sum to at most 1, and what they leave out is the model's doubt about the whole list,
  as PocketSphinx's do (`ivr.flow.nodes.menus._mass` reads them so). Hypotheses that read the same words (they
  differ in case, punctuation or a loop cut off) pool their shares;
* past `WINDOW_S` (a voice message), consecutive windows, their best readings joined.

Partials are empty (nothing reads them: barge-in comes from the endpointer, not from words). Phrases are not used:
neither model has a grammar (`WholeRecognizer._engine_set_phrases`).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis
from ivr.speech.errors import SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ, EngineRecognizer, normalize_text

__all__ = [
    "BEAM_SIZE",
    "LEAD_PAD_S",
    "MAX_UTTERANCE_S",
    "MIN_AUDIO_S",
    "MODEL_RATE_HZ",
    "TOKEN_POWER",
    "TRAIL_PAD_S",
    "WINDOW_S",
    "Scored",
    "WholeDecoder",
    "WholeRecognizer",
    "collapse_loop",
    "model_folder",
    "nbest_weights",
    "normalize_reading",
    "wideband",
]

MODEL_RATE_HZ = 16000
"""What both models hear: call audio is upsampled to it."""

MIN_AUDIO_S = 0.1
"""Less audio than this is not decoded (nothing a caller could have said)."""

MAX_UTTERANCE_S = 120.0
"""Audio kept per utterance; later audio of the same utterance is dropped. A need is seconds long, but a voice
message (`Call.capture`, 60 s by default) is transcribed through the same recognizer."""

WINDOW_S = 30.0
"""Whisper's window (Moonshine was trained on segments no longer): a longer utterance is decoded in consecutive
windows of at most this, their texts joined."""

BEAM_SIZE = 5
"""Beam width, and hypotheses returned for the confidence. Whisper tiny.en on the dev split, `TOKEN_POWER` 0.3:
greedy (1) 78.4% right, 2.5% false accepts; 2 -> 82.8 / 1.4%; 3 -> 83.1 / 1.2%; 5 -> 84.5 / 1.1%, for ~10% more CPU
than greedy (0.107 s a need, one thread; the encoder's share does not grow with the beam). Moonshine base-en: see
`ivr.speech.moonshine_engine`."""

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


def model_folder(dialect: str, path: Path | str | None, *, engine: str, packages: Sequence[str], install: str,
                 bundled: Callable[[str], Path]) -> Path:
    """The folder an engine loads its model from: `path`, else its bundled model's (`bundled`), once the modules the
    engine imports (`packages`) are found (else the error says to `pip install` `install`) and the folder exists.
    Errors name the dialect and path."""
    absent = [name for name in packages if importlib.util.find_spec(name) is None]
    if absent:
        raise SpeechModelError(dialect, path, f"the {engine} engine needs {', '.join(absent)} (pip install {install})")
    root = bundled(dialect) if path is None else Path(path)
    if not root.is_dir():
        raise SpeechModelError(dialect, root, "model folder does not exist")
    return root


def wideband(audio: npt.NDArray[np.int16], *, lead_pad_s: float = LEAD_PAD_S,
             trail_pad_s: float = TRAIL_PAD_S) -> npt.NDArray[np.float32]:
    """8 kHz call audio as the models hear it: within `WINDOW_S`, with `lead_pad_s` and `trail_pad_s` of silence
    around it (the endpointer cuts speech close; Whisper, trained on speech with room around it, loops or misreads
    short needs without), at 16 kHz in [-1, 1)."""
    import soxr

    if (audio.shape[0] / CALL_RATE_HZ) + lead_pad_s + trail_pad_s <= WINDOW_S:
        audio = np.concatenate([np.zeros(round(lead_pad_s * CALL_RATE_HZ), np.int16), audio,
                                np.zeros(round(trail_pad_s * CALL_RATE_HZ), np.int16)])
    wide = soxr.resample(audio.astype(np.float32) / 32768.0, CALL_RATE_HZ, MODEL_RATE_HZ)
    return np.asarray(wide, dtype=np.float32)


def collapse_loop(text: str) -> str:
    """`text` without a loop at its end: when its words from some point on repeat a run of two or more words (the
    last repeat may be cut short by the token cap, but is at least half the run), only the first run is kept.
    "check my policy check my policy check my" -> "check my policy". Left as they are: "no no no", "I want to cancel
    no I want to pay", a long message whose last words echo a phrase said well before them (a voicemail's "... the
    policy number is four two and the policy number"), and a run of numbers ("my number is one two one two")."""
    words = text.split()
    for period in range(2, len(words) - 1):
        for start in range(len(words) - period - max(2, (period + 1) // 2) + 1):
            tail = words[start + period :]
            if tail == words[start : start + len(tail)] and not _numbers(words[start : start + period]):
                return " ".join(words[: start + period])
    return text


_NUMBER_WORDS = frozenset(
    "zero oh o one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand double "
    "triple".split()
)


def _numbers(words: Sequence[str]) -> bool:
    """Whether every word is a digit string or a number word: digits said again are a number, not a loop."""
    return all(w.isdigit() or w in _NUMBER_WORDS for w in words)


def normalize_reading(text: str) -> str:
    """A model's reading as the other engines give words (`normalize_text`), without the quotes some are written in,
    and without a loop at its end (`collapse_loop`)."""
    return collapse_loop(" ".join(w.strip("'") for w in normalize_text(text).split() if w.strip("'")))


@dataclass(slots=True, frozen=True)
class Scored:
    """One beam hypothesis: its reading and how sure the model was of each token."""

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


class WholeDecoder(Protocol):
    """What a `WholeRecognizer` decodes an utterance with: a model loaded in this process (`WhisperModel`,
    `MoonshineModel`), or the decoder processes (`ivr.speech.hosts.HostedDecoder`)."""

    @property
    def dialect(self) -> str: ...

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int = BEAM_SIZE) -> list[Scored]:
        """The beam's hypotheses for one utterance of 8 kHz call audio (blocking)."""
        ...


class WholeRecognizer(EngineRecognizer):
    """One call's utterances, gathered and decoded whole by a shared `WholeDecoder`: at the caller's pause when the
    Ears say so (`settle`, while the endpointer still waits out its end-of-speech silence), else at `finish`. What it
    holds is only the utterance's audio, so it lives in the engine's process even when the decoder processes decode
    (`ivr.speech.hosts.HostedDecoder`): each decode then goes, with its audio, to whichever process is free."""

    def __init__(self, model: WholeDecoder, *, language: str | None = None, beam_size: int = BEAM_SIZE) -> None:
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
        """Ignored: the models have no grammar, and a Whisper prompt of the node's words was not measured to help."""

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
