"""Telephone-channel adaptation of PocketSphinx's en-us model (MLLR), built here from synthesised speech.

The wheel's en-us model was trained on 16 kHz wideband speech; calls are 8 kHz G.711, upsampled to
16 kHz before decoding, so the mel filters between 4 and 6.8 kHz see nothing and every cepstrum is
shifted from what the model expects. One global MLLR transform of the Gaussian means (a 39-dim
affine map per feature stream, a few kilobytes) learns that channel from speech sent through the
engine's own path: text spoken by espeak-ng voices, level-set, G.711 μ-law encoded and decoded, then
upsampled by the same soxr resampler the recognizer uses. The decoder applies the transform to its
means when it loads (`-mllr`), so decoding costs exactly as much CPU as before.

Which text and which voices: the flow's own English phrases (and the carrier lead-ins the phrase
LM adds), never an evaluation row; voices are espeak-ng voice+variant pairs that the speech
evaluation does not use (`ADAPT_VOICES`), so its figures are on voices the transform never heard.

The build needs Debian's sphinxtrain (bw, mllr_solve), sphinxbase-utils (sphinx_fe) and pocketsphinx
(pocketsphinx_mdef_convert) and espeak-ng; `python -m ivr.speech.adaptation OUT` runs it offline
(~2 minutes). The result is committed (`pocketsphinx_engine.TELEPHONE_MLLR`), so the engine needs none of these tools.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "ADAPT_VOICES",
    "AdaptationCorpus",
    "build_mllr",
    "read_sendump",
    "telephone_channel",
    "write_s3_mixw",
]

ADAPT_VOICES = (
    "en-US+m1", "en-US+f1", "en+m2", "en+f3", "en-GB-x-rp+m4", "en-GB-x-rp+f5",
    "en-029+m5", "en-GB-scotland+m6", "en-US-nyc+f1", "en-GB-x-gbclan+m7",
)
"""espeak-ng voice+variant pairs spoken for adaptation: none is one of the speech evaluation's voices
(bench/speech_eval.py: the bare English voices, en-US+f2, en-US+m3, en-GB+f4, en-US+klatt, Festival)."""

SPEAKERS_PER_SENTENCE = 1
"""Voices saying each sentence."""

CALL_RATE_HZ = 8000
MODEL_RATE_HZ = 16000
_LEVEL_DBFS = -20.0
_LEAD_S = 0.25


def telephone_channel(pcm_8k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """What the decoder gets for `pcm_8k` said on a call: μ-law there and back, upsampled as the engine does."""
    import soxr

    from ivr.media.g711 import PCMU

    lead = np.zeros(int(_LEAD_S * CALL_RATE_HZ), dtype=np.int16)
    line = PCMU.decode(PCMU.encode(np.concatenate([lead, pcm_8k, lead])))
    stream = soxr.ResampleStream(CALL_RATE_HZ, MODEL_RATE_HZ, 1, dtype="int16")
    up = stream.resample_chunk(np.asarray(line, dtype=np.int16), last=True)
    return np.asarray(up, dtype=np.int16)


def _level(x: npt.NDArray[np.float32], dbfs: float) -> npt.NDArray[np.int16]:
    """Scale so the speech's RMS (frames within 30 dB of the loudest) sits at `dbfs`."""
    frames = x[: len(x) // 160 * 160].astype(np.float64).reshape(-1, 160)
    power = (frames**2).mean(axis=1) if len(frames) else np.array([np.mean(x.astype(np.float64) ** 2)])
    rms = float(np.sqrt(power[power >= power.max() * 1e-3].mean())) + 1e-9
    return np.clip(np.round(x * (32768.0 * 10 ** (dbfs / 20) / rms)), -32768, 32767).astype(np.int16)


def speak(voice: str, text: str) -> npt.NDArray[np.int16]:
    """`text` said by espeak-ng `voice`, as 8 kHz int16 at -20 dBFS (the level calls are evaluated at)."""
    import soxr

    with tempfile.TemporaryDirectory(prefix="ivr-adapt-") as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True, capture_output=True, timeout=60)
        with wave.open(str(out), "rb") as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return _level(np.asarray(soxr.resample(pcm.astype(np.float32), rate, CALL_RATE_HZ), dtype=np.float32), _LEVEL_DBFS)


# ---------------------------------------------------------------- noise (multi-condition adaptation)

Noise = npt.NDArray[np.float32]


def babble(voices: Sequence[str], texts: Sequence[str], seed: int, talkers: int = 5) -> Noise:
    """`talkers` adaptation voices saying other adaptation sentences at once, each at the same level: never the
    evaluation's babble (its voices and rows), so noisy adaptation hears no evaluation audio."""
    rng = np.random.default_rng(seed)
    streams = [np.concatenate([speak(voices[(k + j) % len(voices)], texts[i]) for j, i in
                               enumerate(rng.choice(len(texts), size=4, replace=False))]).astype(np.float32)
               for k in range(talkers)]
    length = min(len(x) for x in streams)
    return np.asarray(np.sum([x[:length] for x in streams], axis=0), dtype=np.float32)


def traffic(seconds: float, seed: int) -> Noise:
    """Road noise: a low rumble (power falling as 1/f above 60 Hz), swelling as vehicles pass, and some hiss."""
    rng = np.random.default_rng(seed)
    n = int(seconds * CALL_RATE_HZ)
    f = np.fft.rfftfreq(n, 1 / CALL_RATE_HZ)
    shaped = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(f, 60.0)), n)
    t = np.arange(n) / CALL_RATE_HZ
    passes = sum(np.exp(-0.5 * ((t - c) / rng.uniform(0.5, 1.5)) ** 2) for c in rng.uniform(0, seconds, 8))
    out = shaped * (0.6 + passes) + 0.05 * np.std(shaped) * rng.standard_normal(n)
    return np.asarray(out / (np.abs(out).max() + 1e-9), dtype=np.float32)


def mix(speech: npt.NDArray[np.int16], noise: Noise, snr_db: float, offset: int) -> npt.NDArray[np.int16]:
    """`speech` with `noise` (from `offset`, looped) under it at `snr_db` against the speech's active level."""
    n = np.roll(noise, -offset)
    n = np.tile(n, len(speech) // len(n) + 1)[: len(speech)].astype(np.float64)
    x = speech.astype(np.float64)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    power = (frames**2).mean(axis=1) if len(frames) else np.array([np.mean(x**2)])
    active = float(np.sqrt(power[power >= power.max() * 1e-3].mean()))
    gain = active / (float(np.sqrt(np.mean(n**2))) + 1e-9) / 10 ** (snr_db / 20)
    return np.clip(np.round(x + gain * n), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------- model files


def read_sendump(path: Path) -> npt.NDArray[np.float32]:
    """A PTM model's quantised mixture weights (`sendump`) as probabilities [senone][stream][density].

    The wheel ships only this compressed form; sphinxtrain's bw wants `mixture_weights`. Each weight is
    stored as an 8-bit -log (base 1.0001) shifted right by `mixw_shift`, laid out [stream][density][senone].
    """
    data = path.read_bytes()
    pos = 0

    def word() -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<I", data, pos)
        pos += 4
        return int(value)

    def text() -> str | None:
        nonlocal pos
        n = word()
        if n == 0:
            return None
        s = data[pos : pos + n - 1].decode("ascii", errors="replace")
        pos += n
        return s

    text()  # title
    header: dict[str, int] = {}
    while (line := text()) is not None:
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            header[key] = int(value)
    if header.get("cluster_count", 0):
        raise ValueError(f"{path}: clustered sendump (cluster_count {header['cluster_count']}) is not supported")
    senones, densities = header.get("model_count", 0), header.get("mixture_count", 0)
    streams, shift = header.get("feature_count", 0), header.get("mixw_shift", 10)
    if not (senones and densities and streams):
        densities, senones = word(), word()  # old files: sizes after the header
    raw = np.frombuffer(data, dtype=np.uint8, count=streams * densities * senones, offset=pos)
    logw = raw.reshape(streams, densities, senones).astype(np.float64) * (1 << shift)
    weights = np.power(1.0001, -logw).transpose(2, 0, 1)
    weights /= weights.sum(axis=2, keepdims=True)
    return weights.astype(np.float32)


def write_s3_mixw(path: Path, weights: npt.NDArray[np.float32]) -> None:
    """Write [senone][stream][density] weights as a Sphinx-III `mixture_weights` file (no checksum)."""
    senones, streams, densities = weights.shape
    header = "s3\nversion 1.0\n"
    pad = -(len(header) + len("endhdr\n")) % 4
    with path.open("wb") as f:
        f.write((header + " " * pad + "endhdr\n").encode("ascii"))
        f.write(struct.pack("<I", 0x11223344))
        f.write(struct.pack("<IIII", senones, streams, densities, senones * streams * densities))
        f.write(np.ascontiguousarray(weights, dtype="<f4").tobytes())


# ---------------------------------------------------------------- corpus


_WORD = re.compile(r"[a-z']+")


@dataclass(slots=True, frozen=True)
class AdaptationCorpus:
    """Sentences (lower case, dictionary words only) and the voices that say them."""

    sentences: tuple[str, ...]
    voices: tuple[str, ...]
    speakers_per_sentence: int = 1
    noisy: bool = False
    """Multi-condition: every other utterance said again under babble or traffic noise at 10-20 dB SNR."""

    @classmethod
    def from_text(
        cls, texts: Iterable[str], pronounceable: set[str], voices: Sequence[str], speakers_per_sentence: int = 1
    ) -> AdaptationCorpus:
        """Each text normalised; one with a word the dictionary lacks is dropped (bw must align every word)."""
        kept: dict[str, None] = {}
        for text in texts:
            words = _WORD.findall(text.lower())
            if words and all(w in pronounceable for w in words):
                kept[" ".join(words)] = None
        return cls(tuple(kept), tuple(voices), max(1, min(speakers_per_sentence, len(voices))))

    def utterances(self) -> list[tuple[str, str, str]]:
        """(utterance id, voice, sentence): each sentence by `speakers_per_sentence` voices, taken in turn."""
        k, n = self.speakers_per_sentence, len(self.voices)
        return [(f"u{i * k + j:05d}", self.voices[(i * k + j) % n], s)
                for i, s in enumerate(self.sentences) for j in range(k)]

    def noisy_utterances(self) -> list[tuple[str, str, str]]:
        """With `noisy`: every other utterance again (every voice in turn), as (id, voice, sentence), for noise."""
        if not self.noisy:
            return []
        n = len(self.voices)
        return [(f"{uid}n", voice, s) for k, (uid, voice, s) in enumerate(self.utterances()) if (k + k // n) % 2]

    def transcription(self) -> str:
        """The sphinxtrain transcription file: `<s> words </s> (id)` per line."""
        return "".join(f"<s> {s} </s> ({uid})\n" for uid, _, s in [*self.utterances(), *self.noisy_utterances()])


def noisy_speech(corpus: AdaptationCorpus) -> Iterable[tuple[str, npt.NDArray[np.int16]]]:
    """(id, 8 kHz speech) of the corpus's noisy utterances: babble and traffic in turn, SNR 10-20 dB."""
    rng = np.random.default_rng(21)
    noises = (babble(corpus.voices, corpus.sentences, seed=22), traffic(60.0, seed=23))
    for k, (uid, voice, sentence) in enumerate(corpus.noisy_utterances()):
        noise = noises[k % 2]
        yield uid, mix(speak(voice, sentence), noise, float(rng.uniform(10.0, 20.0)), int(rng.integers(len(noise))))


def flow_texts(flow: Path, carriers: Sequence[str]) -> list[str]:
    """The flow's English intent phrases, and each with every carrier lead-in the phrase LM adds."""
    from ivr.speech.flow_intents import load_flow_intents

    phrases = [p for by_lang in load_flow_intents(flow).phrases.values() for p in by_lang.get("en", ())]
    return [*phrases, *(f"{c} {p}" for c in carriers for p in phrases[:: max(1, len(carriers))])]


# ---------------------------------------------------------------- build


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/lib/sphinxtrain/{name}"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(f"{name} not found: apt-get install sphinxtrain sphinxbase-utils pocketsphinx")


def _run(*args: str) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {tail}")


def _accumulate(corpus: AdaptationCorpus, hmm: Path, dictionary: Path, root: Path, *, cmn_init: str,
                means: Path | None = None) -> tuple[Path, Path]:
    """Speak `corpus` down the telephone path and collect Baum-Welch statistics for `hmm` (with `means` instead
    of its own, if given) under `root`: (the model folder bw read, the accumulator folder)."""
    wav_dir, mfc_dir, acc_dir, model = root / "wav", root / "mfc", root / "acc", root / "model"
    for d in (wav_dir, mfc_dir, acc_dir, model):
        d.mkdir(parents=True, exist_ok=True)
    spoken = [(uid, speak(voice, sentence)) for uid, voice, sentence in corpus.utterances()]
    for uid, pcm in [*spoken, *noisy_speech(corpus)]:
        with wave.open(str(wav_dir / f"{uid}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(MODEL_RATE_HZ)
            w.writeframes(telephone_channel(pcm).tobytes())
    fileids = root / "adapt.fileids"
    fileids.write_text("".join(f"{uid}\n" for uid, _, _ in [*corpus.utterances(), *corpus.noisy_utterances()]),
                       encoding="ascii")
    transcription = root / "adapt.transcription"
    transcription.write_text(corpus.transcription(), encoding="ascii")
    for name in ("means", "variances", "transition_matrices", "feat.params", "noisedict"):
        shutil.copy(hmm / name, model / name)
    if means is not None:
        shutil.copy(means, model / "means")
    write_s3_mixw(model / "mixture_weights", read_sendump(hmm / "sendump"))
    _run(_tool("pocketsphinx_mdef_convert"), "-text", str(hmm / "mdef"), str(model / "mdef.txt"))
    _run(_tool("sphinx_fe"), "-argfile", str(hmm / "feat.params"), "-samprate", str(MODEL_RATE_HZ),
         "-c", str(fileids), "-di", str(wav_dir), "-do", str(mfc_dir), "-ei", "wav", "-eo", "mfc",
         "-mswav", "yes")
    _run(_tool("bw"), "-hmmdir", str(model), "-moddeffn", str(model / "mdef.txt"), "-ts2cbfn", ".ptm.",
         "-feat", "1s_c_d_dd", "-svspec", "0-12/13-25/26-38", "-cmn", "live", "-cmninit", cmn_init,
         "-agc", "none", "-dictfn", str(dictionary), "-fdictfn", str(model / "noisedict"),
         "-ctlfn", str(fileids), "-lsnfn", str(transcription), "-cepdir", str(mfc_dir),
         "-accumdir", str(acc_dir))
    return model, acc_dir


def build_mllr(
    corpus: AdaptationCorpus, hmm: Path, dictionary: Path, out: Path, *, cmn_init: str, work: Path | None = None
) -> Path:
    """Speak `corpus`, send it down the telephone path, and solve one MLLR transform for `hmm` into `out`."""
    with tempfile.TemporaryDirectory(prefix="ivr-adapt-") as tmp:
        model, acc_dir = _accumulate(corpus, hmm, dictionary, work or Path(tmp), cmn_init=cmn_init)
        out.parent.mkdir(parents=True, exist_ok=True)
        _run(_tool("mllr_solve"), "-meanfn", str(model / "means"), "-varfn", str(model / "variances"),
             "-outmllrfn", str(out), "-accumdir", str(acc_dir))
    return out


def build_map(
    corpus: AdaptationCorpus, hmm: Path, dictionary: Path, out: Path, *, cmn_init: str, mllr: Path | None,
    tau: float | None = None, work: Path | None = None,
) -> Path:
    """MAP-adapted means for `hmm` into `out`, on top of the `mllr` transform (its means are the prior): each
    Gaussian's mean moves toward the adaptation speech as far as that speech has frames of it (the decoder
    then loads `out` with `-mean` and no `-mllr`). `tau`: the prior's weight in frames (None: map_adapt's
    simple Bayesian update, which moves a well-seen Gaussian almost all the way)."""
    with tempfile.TemporaryDirectory(prefix="ivr-adapt-") as tmp:
        root = work or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        prior = None
        if mllr is not None:
            prior = root / "means.mllr"
            _run(_tool("mllr_transform"), "-inmeanfn", str(hmm / "means"), "-outmeanfn", str(prior),
                 "-mllrmat", str(mllr))
        model, acc_dir = _accumulate(corpus, hmm, dictionary, root, cmn_init=cmn_init, means=prior)
        out.parent.mkdir(parents=True, exist_ok=True)
        _run(_tool("map_adapt"), "-moddeffn", str(model / "mdef.txt"), "-ts2cbfn", ".ptm.",
             "-meanfn", str(model / "means"), "-varfn", str(model / "variances"),
             "-mixwfn", str(model / "mixture_weights"), "-tmatfn", str(model / "transition_matrices"),
             "-accumdir", str(acc_dir), "-mapmeanfn", str(out),
             *(("-bayesmean", "no", "-fixedtau", "yes", "-tau", str(tau)) if tau is not None else ()))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ivr.speech.adaptation [OUT]`: rebuild the telephone MLLR transform (default: the committed one)."""
    from ivr.speech.pocketsphinx_engine import (
        CARRIERS,
        TELEPHONE_CMN_INIT,
        TELEPHONE_MLLR,
        PocketSphinxModel,
        pronunciations,
    )

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=TELEPHONE_MLLR)
    parser.add_argument("--flow", type=Path, default=Path("flows/hotline.yaml"))
    parser.add_argument("--voices", default=",".join(ADAPT_VOICES), help="comma-separated espeak-ng voices")
    parser.add_argument("--speakers", type=int, default=SPEAKERS_PER_SENTENCE, help="voices per sentence")
    parser.add_argument("--work", type=Path, default=None, help="keep intermediate files here")
    parser.add_argument("--noisy", action="store_true",
                        help="multi-condition: every other utterance again under babble or traffic noise, 10-20 dB")
    parser.add_argument("--map", action="store_true",
                        help="write MAP-adapted means (on top of the telephone transform) to OUT instead")
    parser.add_argument("--tau", type=float, default=None, help="with --map: the prior's weight in frames")
    args = parser.parse_args(argv)
    model = PocketSphinxModel.load("en", None, mllr=None)
    corpus = dataclasses.replace(AdaptationCorpus.from_text(
        flow_texts(args.flow, CARRIERS), set(pronunciations(model.dictionary)), args.voices.split(","), args.speakers
    ), noisy=args.noisy)
    print(f"adapting on {len(corpus.sentences)} sentences, {len(corpus.voices)} voices", file=sys.stderr)
    if args.map:
        build_map(corpus, model.hmm, model.dictionary, args.out, cmn_init=TELEPHONE_CMN_INIT, mllr=TELEPHONE_MLLR,
                  tau=args.tau, work=args.work)
    else:
        build_mllr(corpus, model.hmm, model.dictionary, args.out, cmn_init=TELEPHONE_CMN_INIT, work=args.work)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
