"""PocketSphinx 5 adapter: the embedded default engine (its wheel ships a US English model).

The model is 16 kHz, so 8 kHz call audio is upsampled with a streaming soxr resampler; an MLLR
transform loaded with the decoder can map the model's means to that telephone channel
(`TELEPHONE_MLLR`, opt-in, built by `ivr.speech.adaptation`; no decode CPU added). Free
decoding of telephone speech is poor, so the flow's phrases bias the search, either as a small
trigram language model built from them (`Bias.LM`, the default: it still decodes a caller who
words the need differently) or as a flat JSGF grammar (`Bias.GRAMMAR`: only whole phrases).
Words missing from the pronunciation dictionary are dropped from the bias, since PocketSphinx
cannot search for a word it cannot pronounce.

A biased search gets its own small decoder whose dictionary holds only the words of its phrases:
a decoder over the model's whole 134,000-word dictionary and general LM takes ~0.35 s and ~80 MB
to build and another ~0.35 s per phrase LM added (all of it holding the GIL, so every call's media
stalls meanwhile), while a phrase-only decoder takes ~20 ms and ~8 MB and recognizes the same
(an LM or grammar search can only ever output words of its LM or grammar). The full decoder is
built only for free decoding (no phrases). The caller's cepstral mean carries across the decoders
and turns of a call.
"""

from __future__ import annotations

import enum
import functools
import io
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis
from ivr.speech.errors import RecognizerError, SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ, EngineRecognizer

__all__ = [
    "CARRIERS",
    "DEFAULT_MLLR",
    "TELEPHONE_MLLR",
    "Bias",
    "PocketSphinxModel",
    "PocketSphinxRecognizer",
    "pronunciations",
    "word_confidence",
]

_MODEL_RATE_HZ = 16000
_NBEST = 10
"""Paths read from the lattice's n-best list (A*, after an LM search: a few ms)."""

SCORE_SCALE = 0.01
"""How path scores turn into confidences: a text's confidence is its share of the n-best list's mass, a
path weighing exp(SCORE_SCALE * (score - best score)), scores in PocketSphinx's log units (base 1.0001).
A temperature, chosen on the dev split: the mean log-probability of the right intent is flat from 0.003
to 0.01 and falls past it (0.02, 0.04), and at 0.01 a clear "file a claim" whose list also holds "file
a plane" paths 500+ units worse keeps 0.99 of the mass (bench/RESULTS.md "Speech evaluation")."""

TELEPHONE_CMN_INIT = (
    "47.96,27.27,-30.80,43.85,-24.43,-1.21,13.14,-27.93,11.34,-13.84,1.39,7.05,-16.08"
)
"""Initial cepstral mean for 8 kHz call audio upsampled to 16 kHz, for the wheel's en-us model.

The model's default (40,3,-1,0...) suits wideband microphone speech; a fresh decoder fed band-limited
telephone audio misrecognises its first utterances until the running mean adapts. This mean was
measured once by decoding a dozen generic Festival and espeak-ng sentences (none of them test
phrases) through the 8 kHz -> 16 kHz path; with it a fresh decoder's first utterance decodes as well
as a warmed-up one. The mean still adapts per call from there.
"""

TELEPHONE_MLLR = Path(__file__).with_name("data") / "en-us-telephone.mllr"
"""MLLR transform of the en-us means to the telephone channel (8 kHz G.711 upsampled to 16 kHz), built
from synthesised speech by `python -m ivr.speech.adaptation`; see that module for how and on what.

On by default for the built-in model (`DEFAULT_MLLR`; `asr_models: {en: {engine: pocketsphinx, mllr: none}}`
turns it off): on held-out audio it raises right intents from 35% to 59%. It spreads the n-best list ("file
a claim" / "file a plane"), which made an n-best-agreement confidence doubt clear phrases; the n-best
confidence is now read from the path scores (`_posteriors`), under which the worse-scoring variants weigh
little. bench/RESULTS.md "Speech evaluation" has the measurements."""

WARPS = (1.12,)
"""The frequency warps worth searching (config `warps: [1.12]`), vocal-tract-length normalisation; opt-in.

A caller whose formants sit lower than the model's speakers (a long vocal tract; in the evaluation, speech
resampled to 0.85x speed, every formant 15% down) is heard poorly: dev 8.5% right intents against 54.3% clean.
With warps configured, a call's first doubtful utterance (best confidence under `DOUBT`) is decoded again with
every frequency scaled by each warp (the 8 kHz audio read as if sampled at 8000 x warp, so also faster, then
band-limited to 4 kHz again) and the most confident decode wins; its warp holds for the rest of the call (in
`acoustic_state`). Dev (bench/RESULTS.md "Speech evaluation"): speed 0.85 8.5% -> 53.2% right, but clean -1.5,
Festival voices -5.3, speed 1.15 and -30 dBFS -6 points, and such an utterance costs twice the decode CPU (about
80% of the dev clips are doubtful): so not on by default. Picking by acoustic score per frame instead of
confidence chose the warp on most normal speech (dev clean 54.3% -> 47.5%); warps under 1 lost on every row."""

DOUBT = 0.6
"""A first utterance whose best confidence is under this (the hotline's act line) searches `WARPS`."""

_WARP_BLOCK_S = 0.2
"""Warped audio reaches the decoder in blocks this long: the engine's streaming batch (`pool.STREAM_BATCH_SAMPLES`)."""

_WARP_KEEP_S = 12.0
"""Audio kept for the warp search; a longer first utterance is not searched (bounded memory and latency)."""

DEFAULT_MLLR: Literal["default"] = "default"
"""`PocketSphinxModel.load(mllr=DEFAULT_MLLR)`: `TELEPHONE_MLLR` for the built-in model, none for another
model folder (the transform was solved for the built-in model's means only)."""

CARRIERS = ("i want to", "i would like to", "i need to", "i have a question about")
"""Lead-ins callers put before a need; the phrase LM learns them so a phrase keeps its words after them."""


class Bias(enum.Enum):
    """How a phrase list biases PocketSphinx."""

    LM = "lm"
    GRAMMAR = "grammar"


@dataclass(slots=True, frozen=True)
class PocketSphinxModel:
    """A checked PocketSphinx model folder (acoustic model, dictionary, language model)."""

    dialect: str
    hmm: Path
    dictionary: Path
    lm: Path
    cmn_init: str | None = None
    """Initial cepstral mean (comma-separated); None keeps the model's own."""
    mllr: Path | None = None
    """MLLR transform applied to the means at load (the telephone channel's: `ivr.speech.adaptation`)."""
    decoder_options: tuple[tuple[str, str], ...] = ()
    """Decoder settings over PocketSphinx's defaults, as (name, value): e.g. ("lw", "8")."""
    warps: tuple[float, ...] = ()
    """Frequency warps searched on a call's first doubtful utterance (`WARPS` for the built-in model)."""

    @classmethod
    def load(
        cls, dialect: str, path: Path | str | None = None, *, mllr: Path | None | Literal["default"] = DEFAULT_MLLR
    ) -> PocketSphinxModel:
        """Check a model folder (default: the wheel's en-us); `SpeechModelError` names what is missing.

        `mllr`: a transform of the model's means applied at load; `DEFAULT_MLLR` (the default) is
        `TELEPHONE_MLLR` for the built-in model and none for another folder; None: no transform.
        """
        try:
            import pocketsphinx
        except ImportError as exc:
            raise SpeechModelError(dialect, path, "the pocketsphinx package is not installed") from exc
        root = Path(path) if path is not None else Path(pocketsphinx.get_model_path()) / "en-us"
        if not root.is_dir():
            raise SpeechModelError(dialect, root, "model folder does not exist")
        hmm = root / "en-us" if (root / "en-us").is_dir() else root
        dicts = sorted(root.glob("*.dict"))
        lms = sorted(p for p in root.glob("*.lm.bin") if "phone" not in p.name)
        if not (hmm / "mdef").is_file():
            raise SpeechModelError(dialect, hmm, "no acoustic model (mdef) found")
        if not dicts:
            raise SpeechModelError(dialect, root, "no pronunciation dictionary (*.dict) found")
        if not lms:
            raise SpeechModelError(dialect, root, "no language model (*.lm.bin) found")
        builtin = path is None
        if mllr == DEFAULT_MLLR:
            mllr = TELEPHONE_MLLR if builtin else None
        if mllr is not None and not mllr.is_file():
            raise SpeechModelError(dialect, mllr, "MLLR transform file does not exist")
        return cls(
            dialect=dialect,
            hmm=hmm,
            dictionary=dicts[0],
            lm=lms[0],
            cmn_init=TELEPHONE_CMN_INIT if builtin else None,
            mllr=mllr,
        )

    def new_decoder(self) -> Any:
        """A decoder over the whole dictionary and general LM, for free decoding (~0.35 s, ~80 MB)."""
        return self._decoder(dict=self.dictionary, lm=self.lm)

    def phrase_decoder(self, phrases: tuple[str, ...], bias: Bias) -> Any:
        """A decoder that searches only `phrases` (all words known: see `known_words`), ~20 ms."""
        if bias is Bias.GRAMMAR:
            alternatives = " | ".join(dict.fromkeys(phrases))
            search = f"#JSGF V1.0;\ngrammar g;\npublic <s> = {alternatives};\n"
            vocabulary = phrases
        else:
            search = phrase_arpa(phrases)
            vocabulary = (*phrases, *CARRIERS)
        by_word = pronunciations(self.dictionary)
        lines = [line for word in dict.fromkeys(" ".join(vocabulary).split()) for line in by_word.get(word, ())]
        with tempfile.TemporaryDirectory(prefix="ivr-phrases-") as tmp:
            dictionary, search_file = Path(tmp) / "phrases.dict", Path(tmp) / "phrases.search"
            dictionary.write_text("\n".join(lines) + "\n", encoding="utf-8")
            search_file.write_text(search, encoding="utf-8")
            if bias is Bias.GRAMMAR:
                return self._decoder(dict=dictionary, jsgf=search_file)
            return self._decoder(dict=dictionary, lm=search_file)

    def known_words(self, phrase: str) -> str:
        """`phrase` without the words the dictionary cannot pronounce."""
        by_word = pronunciations(self.dictionary)
        return " ".join(w for w in phrase.split() if w in by_word)

    def _decoder(self, **search: Path) -> Any:
        from pocketsphinx import Decoder

        try:
            options: dict[str, object] = {
                "hmm": str(self.hmm),
                "samprate": _MODEL_RATE_HZ,
                "loglevel": "FATAL",
                "fwdflat": False,
                **{key: str(value) for key, value in search.items()},
            }
            if self.cmn_init is not None:
                options["cmninit"] = self.cmn_init
            if self.mllr is not None:
                options["mllr"] = str(self.mllr)
            options.update(self.decoder_options)
            return Decoder(**options)
        except (RuntimeError, ValueError) as exc:
            raise SpeechModelError(self.dialect, self.hmm, f"decoder failed to load: {exc}") from exc


@functools.lru_cache(maxsize=4)
def pronunciations(dictionary: Path) -> dict[str, tuple[str, ...]]:
    """The dictionary's lines by word (alternate pronunciations `word(2)` under `word`), read once."""
    by_word: dict[str, list[str]] = {}
    with dictionary.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            word = line.split(None, 1)[0].split("(", 1)[0]
            by_word.setdefault(word, []).append(line.rstrip("\n"))
    return {word: tuple(lines) for word, lines in by_word.items()}


class PocketSphinxRecognizer(EngineRecognizer):
    """A streaming PocketSphinx recognizer: a small decoder per phrase set, built on first use."""

    _MAX_DECODERS = 16
    """Phrase sets kept built per recognizer (a flow has one per open question and language)."""

    def __init__(
        self, model: PocketSphinxModel, *, language: str | None = None, bias: Bias = Bias.LM
    ) -> None:
        import soxr

        super().__init__(language or model.dialect)
        self._soxr = soxr
        self._model = model
        self._bias = bias
        self._decoders: dict[tuple[str, ...], Any] = {}
        """Phrase set (as given) → its decoder; () is the full free-decoding one. Oldest first."""
        self._decoder: Any = None
        """The decoder of the utterance in progress."""
        self._cmn: str | None = None
        """The caller's cepstral mean so far (None: the model's initial one)."""
        self._initial_cmn: str | None = model.cmn_init
        self._resampler: Any = None
        self._warp: float | None = None
        """The call's frequency warp; None until its first utterance settled it (see `WARPS`)."""
        self._start_cmn: str | None = None
        self._kept: list[npt.NDArray[np.int16]] | None = None
        """The utterance's audio while a warp search may follow it (None: not kept, or too long)."""
        self._kept_samples = 0

    @property
    def bias(self) -> Bias:
        return self._bias

    def restart_call(self) -> None:
        """Forget the previous call's acoustics (cepstral mean, warp) before serving a new call."""
        self.reset()
        self._cmn = None
        self._warp = None
        self.set_phrases(())

    def acoustic_state(self) -> str | None:
        if self._cmn is None or self._warp is None:
            return self._cmn
        return f"{self._cmn}{_WARP_TAG}{self._warp:g}"

    def restore_acoustic_state(self, state: str | None) -> None:
        cmn, tag, warp = (state or "").partition(_WARP_TAG)
        self._cmn = cmn or None
        self._warp = float(warp) if tag else None

    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None:
        if phrases:
            self._decoder_for(phrases)  # built now, off the call path, so a bad phrase set fails here

    def _decoder_for(self, phrases: tuple[str, ...]) -> Any:
        decoder = self._decoders.pop(phrases, None)
        if decoder is None:
            decoder = self._build(phrases)
            while len(self._decoders) >= self._MAX_DECODERS:
                del self._decoders[next(iter(self._decoders))]
        self._decoders[phrases] = decoder  # most recently used last
        return decoder

    def _build(self, phrases: tuple[str, ...]) -> Any:
        decoder = self._build_search(phrases)
        if self._initial_cmn is None:
            self._initial_cmn = str(decoder.get_cmn())  # the model's own, the same for all its decoders
        return decoder

    def _build_search(self, phrases: tuple[str, ...]) -> Any:
        if not phrases:
            return self._model.new_decoder()
        known = [kept for p in phrases if (kept := self._model.known_words(p))]
        if not known:
            raise RecognizerError(
                f"none of the {len(phrases)} phrases for dialect {self.language!r} has a word in "
                f"the pocketsphinx dictionary {self._model.dictionary}"
            )
        return self._model.phrase_decoder(tuple(known), self._bias)

    def _engine_start(self) -> None:
        self._decoder = self._decoder_for(self.phrases)
        self._start_cmn = self._cmn or self._initial_cmn
        self._decoder.set_cmn(self._start_cmn)
        self._resampler = self._resampler_for(self._warp or 1.0)
        searching = self._warp is None and self._model.warps and self._bias is Bias.LM
        self._kept, self._kept_samples = ([] if searching else None), 0
        self._decoder.start_utt()

    def _resampler_for(self, warp: float) -> Any:
        """8 kHz call audio to the model's 16 kHz; with a warp, first read as if sampled at 8000 x `warp` (every
        frequency x warp) and brought back to 8 kHz, so the band still ends at 4 kHz as the telephone transform
        expects (warped straight to 16 kHz it would end at 4 kHz x warp)."""
        up = self._soxr.ResampleStream(CALL_RATE_HZ, _MODEL_RATE_HZ, 1, dtype="int16")
        if warp == 1.0:
            return up
        block = int(_MODEL_RATE_HZ * _WARP_BLOCK_S)
        return _Chain(self._soxr.ResampleStream(CALL_RATE_HZ * warp, CALL_RATE_HZ, 1, dtype="int16"), up, block)

    def _engine_feed(self, frame: npt.NDArray[np.int16]) -> None:
        if self._kept is not None:
            self._kept_samples += len(frame)
            if self._kept_samples > _WARP_KEEP_S * CALL_RATE_HZ:
                self._kept = None
            else:
                self._kept.append(frame.copy())
        self._process(self._resampler.resample_chunk(frame))

    def _process(self, up: npt.NDArray[np.int16]) -> None:
        if up.size:
            self._decoder.process_raw(np.ascontiguousarray(up, dtype=np.int16).tobytes())

    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        if not final:
            return self._read(final=False)
        self._process(self._resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True))
        self._end_utterance()
        hyps = self._read(final=True)
        kept, self._kept = self._kept, None
        if self._warp is None and self._model.warps:
            if kept is not None and (not hyps or hyps[0].confidence < DOUBT):
                hyps = self._search_warps(kept, hyps)
            else:
                self._warp = 1.0
        return hyps

    def _search_warps(self, blocks: list[npt.NDArray[np.int16]], heard: list[Hypothesis]) -> list[Hypothesis]:
        """Decode the utterance again with each of the model's warps; the most confident decode wins."""
        best = (_top(heard), 1.0, heard, self._cmn)
        for warp in self._model.warps:
            self._decoder.set_cmn(self._start_cmn)
            self._decoder.start_utt()
            resampler = self._resampler_for(warp)
            for block in blocks:
                self._process(resampler.resample_chunk(block))
            self._process(resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True))
            self._end_utterance()
            hyps = self._read(final=True)
            if _top(hyps) > best[0]:
                best = (_top(hyps), warp, hyps, self._cmn)
        _, self._warp, hyps, self._cmn = best
        return hyps

    def _read(self, *, final: bool) -> list[Hypothesis]:
        """The decoder's hypotheses now; when `final` (the utterance ended) its n-best with confidences."""
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr:
            return []
        # N-best comes from the lattice: cheap after an LM search, ~100 ms after a grammar search.
        if not (final and self._bias is Bias.LM):
            return [Hypothesis(hyp.hypstr, 0.5)]
        heard = word_confidence([(seg.word, seg.prob) for seg in self._decoder.seg() or ()])
        logmath = self._decoder.get_logmath()
        # The lattice can yield None for a path with no words (seen on noisy, near-silent audio).
        scored = [(n.hypstr, logmath.log(n.score)) for _, n in zip(range(_NBEST), self._decoder.nbest(), strict=False)
                  if n is not None and n.score > 0.0]
        return [Hypothesis(h.text, h.confidence * heard) for h in _posteriors(hyp.hypstr, scored)]

    def _engine_abandon(self) -> None:
        self._kept = None
        self._end_utterance()

    def _end_utterance(self) -> None:
        self._decoder.end_utt()
        self._cmn = str(self._decoder.get_cmn())

    def close(self) -> None:
        super().close()
        self._decoders.clear()
        self._decoder = None


class _Chain:
    """Two soxr streams in series, used as one (`resample_chunk(chunk, last=False)`), releasing the output in
    blocks of `block` samples (the rest at the end).

    PocketSphinx updates its live cepstral mean per block it is given, so how the audio is cut moves the decode: a
    warped stream cut where the call's blocks were cut would give the decoder blocks 1/warp as long. So a warped
    decode gets blocks as long as an unwarped one's."""

    def __init__(self, first: Any, second: Any, block: int) -> None:
        self._first, self._second, self._block = first, second, block
        self._pending = np.zeros(0, dtype=np.int16)

    def resample_chunk(self, chunk: npt.NDArray[np.int16], last: bool = False) -> npt.NDArray[np.int16]:
        middle = np.asarray(self._first.resample_chunk(chunk, last=last), dtype=np.int16)
        out = np.concatenate([self._pending, np.asarray(self._second.resample_chunk(middle, last=last), np.int16)])
        cut = len(out) if last else len(out) // self._block * self._block
        self._pending = out[cut:]
        return out[:cut]


@functools.lru_cache(maxsize=32)
def phrase_arpa(phrases: tuple[str, ...]) -> str:
    """An ARPA language model of the phrases (and carrier sentences around them), memoised.

    Estimating it is pure Python and holds the GIL for seconds with a hotline's ~1,000 phrases:
    done once per phrase set per process (the engine warms it before taking calls), never per call.
    """
    from pocketsphinx.lm import ArpaBoLM

    starts = ("i ", "can ", "how ", "what ", "when ", "is ", "my ", "please ")
    carried = [f"{c} {p}" for p in phrases if not p.startswith(starts) for c in CARRIERS]
    builder = ArpaBoLM(add_start=True, text="\n".join([*phrases, *carried]) + "\n")
    builder.compute()
    out = io.StringIO()
    builder.write(out)
    return out.getvalue()


_WARP_TAG = ";warp="
"""Joins the cepstral mean and the call's warp in `acoustic_state`."""

_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"})
"""The en-us model's non-words (its noisedict): silence and noise, not what the caller said."""


def _top(hyps: list[Hypothesis]) -> float:
    """The best hypothesis's confidence (0 for none)."""
    return hyps[0].confidence if hyps else 0.0


def word_confidence(segments: list[tuple[str, float]]) -> float:
    """How sure the recognizer is of its best path: the mean lattice posterior of its words.

    Measured on the dev split with the telephone transform (2,242 clips, bench/RESULTS.md), this is
    already calibrated as the chance that the flow then routes the caller right: a Platt fit of that
    outcome on it has slope 0.88 and offset -0.04 (within 0.03 of the identity from 0.3 to 0.99), so it
    is used as it is. Scaling the n-best by it keeps a confidently garbled utterance from acting.
    """
    posteriors = [min(1.0, prob) for word, prob in segments if word.split("(", 1)[0] not in _FILLERS]
    return sum(posteriors) / len(posteriors) if posteriors else 0.0


def _posteriors(best: str, scored: list[tuple[str, int]], scale: float = SCORE_SCALE) -> list[Hypothesis]:
    """Confidence from n-best path scores: each distinct text's share of the list's probability mass.

    PocketSphinx's own posterior (`hyp().prob`) is tiny under a language model, and counting how many
    n-best paths repeat the best text (this engine's confidence until the telephone MLLR transform) calls
    a clear "file a claim" doubtful when its list also holds "file a plane" paths that score far worse.
    A path weighs exp(scale * (score - top score)): `scale` is a temperature fitted on the dev split.
    The best path's text comes first (weighed like the top path when the A* list lacks it); a text with
    no words in the list is dropped. Without scores the best text gets 0.5, as with no n-best at all.
    """
    if not scored:
        return [Hypothesis(best, 0.5)]
    top = max(score for _, score in scored)
    mass: dict[str, float] = {}
    for text, score in scored:
        if text.strip():
            mass[text] = mass.get(text, 0.0) + math.exp(scale * (score - top))
    mass.setdefault(best, 1.0)
    total = sum(mass.values())
    ranked = sorted(mass, key=lambda t: (t != best, -mass[t]))
    return [Hypothesis(t, mass[t] / total) for t in ranked]
