"""Say-your-need-once on held-out speech: intent accuracy per condition and the false-accept rate.

Evaluation sets (tests/data/eval/*.tsv) were written by hand and are never trained or tuned on: the
classifier learns from the flow's phrases only; settings are chosen on the dev_*.tsv split.

* Text: the flow's own classifier and decision (`ivr.flow.nodes.menus.classify_speech` with the
  hotline's `need` node: keywords, thresholds) on every zh and en evaluation row, typed (confidence 1).
* Audio: every English evaluation row rendered by every installed English voice (Festival's
  diphone voices, espeak-ng's English voices and a few of its variants), 8 kHz, at -20 dBFS, cached
  under var/speech_eval/. Conditions: clean (every voice), then one voice per row (Festival on even
  rows, espeak-ng's voices in turn on odd ones): babble (five other voices' speech mixed) and street noise (shaped, with
  rumble and passing bursts) at 20/10/5 dB SNR, speed 0.85 and 1.15 (resampled: tempo and pitch),
  level -30 and -6 dBFS (clipped), G.711 μ-law with 1% and 5% of its 20 ms packets lost (silence).
  Each clip is heard as a call's need is: through the call's `Ears` (the endpointer, the front end that
  sets the level and repairs clipping for PocketSphinx, the recognizer hearing 0.3 s of each pause), the engine's
  English recognizer (`asr_engine`'s, Moonshine by default; `--engine whisper`) in its decoder processes, lent through
  the engine's `DecodePool` with the flow's English phrase LM (PocketSphinx; Whisper decodes freely),
  a fresh call's cepstral mean, the audio reaching the decoder in 0.2 s chunks from the utterance's start
  as in a live call (`DecodeSession` batches; PocketSphinx's live cepstral mean makes a decode depend on its
  chunks, and this bench feeds audio faster than real time); then the same decision a call makes.
  `--front-end off` hears the same endpointed audio without the front end (the before of bench/RESULTS.md
  "Front end"). `bench.speech_turns` scores the turns after the first on the same clips (`Clip.say`).

Right = the flow routes the caller to the right intent: acted on at once, or confirmed (the caller
presses 1). False accept = a wrong intent acted on without confirmation. No-match = re-asked.

    .venv/bin/python -m bench.speech_eval [--quick] [--set dev] [--conditions clean,"street 10 dB"]
        [--voices festival:kal_diphone,espeak:en-US] [--limit N] [--step N] [--text-only] [--front-end off]
        [--engine whisper|moonshine|pocketsphinx] [--beam N] [--answers pocketsphinx] [--heard FILE|none]
    .venv/bin/python -m bench.speech_eval --build-heard [--engine whisper|moonshine|pocketsphinx]

`--conditions/--voices/--limit` pick a subset while iterating (the full run decodes ~1,650 clips). The "phrases +
heard" columns: the classifier as the engine loads the flow when the bench's engine hears English (its phrases and
that engine's heard file, flows/hotline.heard.<engine>.tsv: `ivr.flow.loader.heard_source`), or trained with
`--heard FILE`; "phrases only": without any heard file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import functools
import hashlib
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.call import SpeechInput  # noqa: E402
from ivr.config import EngineConfig  # noqa: E402
from ivr.flow import check_file  # noqa: E402
from ivr.flow.intents import Classifier  # noqa: E402
from ivr.flow.loader import heard_path, heard_source, load_text, read_heard, read_heard_file  # noqa: E402
from ivr.flow.model import AskNode, Thresholds  # noqa: E402
from ivr.flow.nodes.menus import ask_inputs, classify_speech  # noqa: E402
from ivr.media.g711 import PCMU  # noqa: E402
from ivr.speech import DecodePool, EngineKind, ModelSpec, SpeechModels  # noqa: E402
from ivr.speech.evaluation import read_eval_rows  # noqa: E402
from ivr.speech.frontend import FrontEndConfig  # noqa: E402
from ivr.speech.models import ANSWERS_ENGINES, MAX_BEAM  # noqa: E402
from ivr.speech.pocketsphinx_engine import DEFAULT_MLLR, TELEPHONE_MLLR  # noqa: E402

Audio = npt.NDArray[np.int16]
RATE = 8000
FRAME = 160
EVAL = ROOT / "tests" / "data" / "eval"
CACHE = ROOT / "var" / "speech_eval"
FLOW = ROOT / "flows" / "hotline.yaml"
NODE = "need"
HEARD_AT = CACHE / FLOW.name
"""`--build-heard` writes next to this path (var/speech_eval/hotline.heard.<engine>.tsv), not next to the flow: score
it first (`--heard var/speech_eval/hotline.heard.moonshine.tsv`), then copy it to flows/, where the engine's flow
loader reads it when that engine hears English (docs/SPEECH.md "Confusion-aware training")."""
DEV_ACT = 0.9
"""Act threshold for recognized speech at which false accepts fell to <= 2% on the dev split, re-chosen
with the telephone MLLR transform (`--set dev --sweep`, 6 voices, clean + babble/street 10 dB, 10:40 UTC:
0.6 → 8.5%, 0.7 → 5.3%, 0.8 → 3.5%, 0.85 → 2.3%, 0.9 → 1.3%); reported as a what-if, not applied."""
ENGINE: EngineKind | None = None
"""The English engine (`--engine whisper|moonshine|pocketsphinx`); None: the engine's default
(`ivr.engine.app.speech_specs`)."""
ANSWERS: EngineKind | None = None
"""The English answers engine, for closed turns (`--answers pocketsphinx`: `ModelSpec.answers`); None: none when
`--engine` is given, else the engine's default."""
BEAM: int | None = None
"""The whole-utterance engine's beam (`--beam N`: `ModelSpec.beam`; `asr_engine: moonshine` is 3); None: the spec's."""
MLLR: pathlib.Path | None | Literal["default"] = DEFAULT_MLLR
"""The acoustic model's MLLR transform (`--mllr none|telephone|PATH`); by default the engine's (the telephone one)."""
FRONT_END = FrontEndConfig()
"""The engine's front end (level, clipping repair); `--front-end off` hears the endpointed audio as it is."""
NOMINAL_DBFS = -20.0
LEAD_S, TRAIL_S = 0.3, 0.7


# ---------------------------------------------------------------- voices


@dataclass(frozen=True, slots=True)
class Voice:
    name: str
    command: Callable[[str, pathlib.Path], list[str]]
    stdin: bool


def _festival(voice: str, text: str, out: pathlib.Path) -> list[str]:
    return ["text2wave", "-eval", f"(voice_{voice})", "-o", str(out)]


def _espeak(voice: str, text: str, out: pathlib.Path) -> list[str]:
    return ["espeak-ng", "-v", voice, "-w", str(out), text]


def installed_voices() -> list[Voice]:
    """Festival's installed voices, espeak-ng's English voices (no MBROLA) and a few espeak-ng variants."""
    voices: list[Voice] = []
    for d in sorted(pathlib.Path("/usr/share/festival/voices").glob("*/*")):
        if d.is_dir():
            voices.append(Voice(f"festival:{d.name}", functools.partial(_festival, d.name), True))
    listing = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True, check=True).stdout
    names = []
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and not cols[4].startswith("mb/") and cols[1].startswith("en"):
            names.append(cols[4].split("/")[-1])
    names += ["en-US+f2", "en-US+m3", "en-GB+f4", "en-US+klatt"]
    for n in dict.fromkeys(names):
        voices.append(Voice(f"espeak:{n}", functools.partial(_espeak, n), False))
    return voices


def render(voice: Voice, text: str) -> Audio:
    """`text` in `voice`, 8 kHz int16 at the nominal level; cached under var/speech_eval/."""
    import soxr

    key = hashlib.sha256(f"{voice.name}\0{text}".encode()).hexdigest()[:20]
    path = CACHE / "clips" / f"{key}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="speech-eval-") as tmp:
            out = pathlib.Path(tmp) / "say.wav"
            subprocess.run(voice.command(text, out), input=text if voice.stdin else None, text=True,
                           check=True, capture_output=True, timeout=60)
            with wave.open(str(out), "rb") as w:
                rate = w.getframerate()
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        pcm = np.asarray(soxr.resample(pcm.astype(np.float32), rate, RATE), dtype=np.float32)
        pcm = set_level(pcm, NOMINAL_DBFS)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm.tobytes())
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


# ---------------------------------------------------------------- conditions


def active_rms(x: npt.NDArray[np.float32]) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest one (speech, not the pauses)."""
    n = len(x) // FRAME
    if n == 0:
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9)
    frames = x[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    power = (frames**2).mean(axis=1)
    active = power[power > power.max() * 1e-3]
    return float(np.sqrt(active.mean()) + 1e-9)


def set_level(x: npt.NDArray[np.float32] | Audio, dbfs: float) -> Audio:
    """Scale so the active speech sits at `dbfs` RMS (full scale = 32768); what exceeds int16 clips."""
    y = x.astype(np.float32) * (32768.0 * 10 ** (dbfs / 20) / active_rms(x.astype(np.float32)))
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def add_noise(speech: Audio, noise: npt.NDArray[np.float32], snr_db: float) -> Audio:
    reps = int(np.ceil(len(speech) / len(noise)))
    n = np.tile(noise, reps)[: len(speech)].astype(np.float32)
    s = speech.astype(np.float32)
    gain = active_rms(s) / (float(np.sqrt(np.mean(n.astype(np.float64) ** 2))) + 1e-9) / 10 ** (snr_db / 20)
    return np.clip(np.round(s + gain * n), -32768, 32767).astype(np.int16)


def street_noise(seconds: float, seed: int) -> npt.NDArray[np.float32]:
    """Traffic-like noise: brown-ish rumble, a slowly varying level, and passing broadband bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / RATE)
    shape = 1.0 / np.maximum(f, 40.0) ** 0.8  # pink-to-brown: most energy low, still some hiss
    shape[f > 3400] *= 0.3
    base = np.fft.irfft(spectrum * shape, n)
    t = np.arange(n) / RATE
    swell = 1.0 + 0.5 * np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6.28))
    bursts = np.zeros(n)
    for start in rng.uniform(0, seconds, size=max(1, int(seconds / 4))):
        width = rng.uniform(0.8, 2.0)
        bursts += np.exp(-0.5 * ((t - start) / (width / 3)) ** 2)
    out = base * (swell + 1.5 * bursts)
    return np.asarray(out / (np.abs(out).max() + 1e-9), dtype=np.float32)


def babble_noise(voices: Sequence[Voice], texts: Sequence[str], seed: int) -> npt.NDArray[np.float32]:
    """Five talkers at once (other voices saying other sentences), each at the same level."""
    rng = np.random.default_rng(seed)
    talkers = []
    for k in range(5):
        voice = voices[k % len(voices)]
        chosen = rng.choice(len(texts), size=4, replace=False)
        talkers.append(np.concatenate([render(voice, texts[i]) for i in chosen]).astype(np.float32))
    length = min(len(t) for t in talkers)
    return np.asarray(np.sum([t[:length] for t in talkers], axis=0), dtype=np.float32)


def speed(x: Audio, factor: float) -> Audio:
    import soxr

    return np.asarray(soxr.resample(x.astype(np.float32), RATE * factor, RATE), dtype=np.float32).clip(
        -32768, 32767).astype(np.int16)


def g711_loss(x: Audio, loss: float, seed: int) -> Audio:
    rng = np.random.default_rng(seed)
    out = PCMU.decode(PCMU.encode(x)).copy()
    for i in range(0, len(out), FRAME):
        if rng.random() < loss:
            out[i : i + FRAME] = 0
    return out


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    apply: Degrade
    all_voices: bool = False


Degrade = Callable[[Audio, int], Audio]
"""(clip, seed) → degraded clip."""


def noisy(noise: npt.NDArray[np.float32], stride: int, snr_db: float) -> Degrade:
    return lambda x, seed: add_noise(x, np.roll(noise, seed * stride), snr_db)


def faster(factor: float) -> Degrade:
    return lambda x, seed: speed(x, factor)


def louder(dbfs: float) -> Degrade:
    return lambda x, seed: set_level(x, dbfs)


def lossy(loss: float) -> Degrade:
    return lambda x, seed: g711_loss(x, loss, seed + 7919)


def conditions(babble: npt.NDArray[np.float32], street: npt.NDArray[np.float32]) -> list[Condition]:
    out = [Condition("clean", lambda x, seed: x, all_voices=True)]
    out += [Condition(f"babble {snr} dB", noisy(babble, 997, snr)) for snr in (20, 10, 5)]
    out += [Condition(f"street {snr} dB", noisy(street, 1499, snr)) for snr in (20, 10, 5)]
    out += [Condition(f"speed {f:.2f}", faster(f)) for f in (0.85, 1.15)]
    out += [Condition(f"level {db} dBFS", louder(db)) for db in (-30, -6)]
    out += [Condition(f"G.711 {loss:.0%} loss", lossy(loss)) for loss in (0.01, 0.05)]
    return out


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Verdict:
    expected: str
    intent: str | None
    confidence: float
    action: str  # "act", "confirm" or "reask"
    heard: str

    @property
    def right(self) -> bool:
        return self.intent == self.expected and self.action in ("act", "confirm")

    @property
    def false_accept(self) -> bool:
        return self.action == "act" and self.intent != self.expected


Classify = Callable[[AskNode, Classifier | None, SpeechInput], tuple[str | None, float, str]]


def decide(
    node: AskNode, classifier: Classifier | None, heard: SpeechInput, expected: str, act: float | None = None,
    classify: Classify = classify_speech, levels: Thresholds | None = None,
) -> Verdict:
    """The ask node's decision; `act` overrides the act threshold (a what-if, chosen on dev); `classify` and
    `levels`: the node's reading of a first answer (`classify_speech`, its `thresholds`) or of one after a
    no-match (`classify_answer`, `retry_thresholds`)."""
    intent, confidence, _ = classify(node, classifier, heard)
    levels = levels or node.thresholds
    if intent is None:
        action = "reask"
    elif confidence >= (levels.act if act is None else act):
        action = "act"
    elif confidence >= levels.confirm and node.confirm_prompt is not None:
        action = "confirm"
    else:
        action = "reask"
    return Verdict(expected, intent, confidence, action, heard.text)


def summary(verdicts: Sequence[Verdict]) -> tuple[float, float, float, float]:
    n = max(1, len(verdicts))
    right = sum(v.right for v in verdicts) / n
    acted = sum(v.action == "act" and v.intent == v.expected for v in verdicts) / n
    fa = sum(v.false_accept for v in verdicts) / n
    reask = sum(v.action == "reask" for v in verdicts) / n
    return right, acted, fa, reask


# ---------------------------------------------------------------- recognition


Turn = tuple[Audio, tuple[str, ...], bool]
"""One listen of a call: what the caller says, the phrases the recognizer listens for, and whether they are the
turn's whole answer set (`ListenSpec.closed`: a re-ask's answers, yes/no)."""


def decode_cached(clips: Sequence[Audio], phrases: tuple[str, ...]) -> list[SpeechInput]:
    """Each clip as its own call's need (`decode_calls` with one turn per call)."""
    return [turns[-1] for turns in decode_calls([[(c, phrases, False)] for c in clips])]


def decode_calls(calls: Sequence[Sequence[Turn]]) -> list[list[SpeechInput]]:
    """`hear_calls`, remembering each call's results under var/speech_eval/decoded/ (keyed by its turns' samples
    and phrases and the decoder's code), so re-scoring with another classifier or rule needs no decoding."""
    import json

    from ivr.call import Hypothesis

    # Keyed by the decoder's and the ears' code as well: a changed search or front end must not reuse old results.
    engine = b"".join((ROOT / "ivr" / f).read_bytes() for f in (
        "speech/pocketsphinx_engine.py", "speech/whisper_engine.py", "speech/moonshine_engine.py", "speech/whole.py",
        "speech/frontend.py", "speech/vad.py", "speech/pool.py", "engine/ears.py"))
    engine += repr(FRONT_END).encode() + repr(english_spec()).encode()
    mllr = TELEPHONE_MLLR if MLLR == DEFAULT_MLLR else MLLR
    engine += mllr.read_bytes() if isinstance(mllr, pathlib.Path) else b""  # the model's adaptation too
    folder = CACHE / "decoded" / hashlib.sha256(engine).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    keys = []
    for turns in calls:
        key = hashlib.sha256()
        for clip, phrases, closed in turns:
            key.update(hashlib.sha256("\n".join(phrases).encode()).digest() + clip.tobytes() + b"closed" * closed)
        keys.append(key.hexdigest()[:24])
    out: dict[int, list[SpeechInput]] = {}
    todo = []
    for i, k in enumerate(keys):
        f = folder / f"{k}.json"
        if f.exists():
            out[i] = [SpeechInput(d["text"], d["confidence"], "en", tuple(Hypothesis(t, c) for t, c in d["nbest"]))
                      for d in json.loads(f.read_text(encoding="utf-8"))]
        else:
            todo.append(i)
    if todo:
        fresh = asyncio.run(hear_calls([calls[i] for i in todo]))
        for i, heard in zip(todo, fresh, strict=True):
            out[i] = heard
            (folder / f"{keys[i]}.json").write_text(json.dumps(
                [{"text": h.text, "confidence": h.confidence, "nbest": [[x.text, x.confidence] for x in h.nbest]}
                 for h in heard]), encoding="utf-8")
    return [out[i] for i in range(len(calls))]


def english_spec() -> ModelSpec:
    """The English model the bench hears with: `ENGINE` (`--engine`) and `ANSWERS` (`--answers`), else the engine's
    default; `MLLR` applies to PocketSphinx."""
    from ivr.engine.app import speech_specs

    default = next(s for s in speech_specs(EngineConfig()) if s.dialect == "en")
    if ENGINE is None and ANSWERS is None and MLLR == DEFAULT_MLLR and BEAM is None:
        return default

    def part(engine: EngineKind) -> ModelSpec:
        if engine is EngineKind.POCKETSPHINX:
            return ModelSpec("en", engine, mllr=MLLR)
        return ModelSpec("en", engine) if engine is not default.engine else dataclasses.replace(default, answers=None)

    answers = ANSWERS or (default.answers.engine if ENGINE is None and default.answers is not None else None)
    spec = part(ENGINE or default.engine)
    return dataclasses.replace(spec, answers=None if answers is None else part(answers), beam=BEAM or spec.beam)


async def hear_calls(calls: Sequence[Sequence[Turn]]) -> list[list[SpeechInput]]:
    """Each call heard as the engine hears it: one call's `Ears` (endpointer, the front end, the recognizer
    hearing 0.3 s of each pause) over the engine's models, decoder processes and pool, a fresh cepstral mean
    carried from turn to turn. The decoder sessions take the audio in 0.2 s chunks from each utterance's start
    (`STREAM_BATCH_SAMPLES`), as a live call's do, however fast it is fed here: runs repeat. A turn the
    endpointer finds no speech in is heard as nothing."""
    from ivr.call import ListenSpec
    from ivr.clock import FakeClock
    from ivr.engine.ears import Ears, EarsEvent, Heard
    from ivr.speech.events import SpeechStarted

    cfg = EngineConfig()
    models = SpeechModels.load([english_spec()])
    models.start_hosts(cfg.asr_processes)
    for phrases, closed in dict.fromkeys((phrases, closed) for turns in calls for _, phrases, closed in turns):
        models.prepare("en", phrases, recognizers=cfg.asr_prewarm, closed=closed)
    lead, trail = np.zeros(int(LEAD_S * RATE), np.int16), np.zeros(int(TRAIL_S * RATE), np.int16)
    out = [[SpeechInput("", 0.0, "en") for _ in turns] for turns in calls]
    limit = asyncio.Semaphore(2 * cfg.asr_processes)
    try:
        async with DecodePool(cfg.asr_workers, max_recognizers=cfg.asr_max_decoders) as pool:

            async def turn(ears: Ears, clip: Audio, phrases: tuple[str, ...], closed: bool) -> SpeechInput | None:
                heard: asyncio.Future[SpeechInput | None] = asyncio.get_running_loop().create_future()
                started: list[SpeechStarted] = []

                def listen(event: EarsEvent) -> None:
                    if isinstance(event, SpeechStarted):
                        started.append(event)
                    elif isinstance(event, Heard) and not heard.done():
                        heard.set_result(event.speech)

                await ears.start(ListenSpec(languages=("en",), phrases=phrases, closed=closed), listen)
                audio = np.concatenate([lead, clip, trail])
                for k in range(0, len(audio) - FRAME + 1, FRAME):
                    ears.frame(audio[k : k + FRAME])
                    if k % (25 * FRAME) == 0:
                        await asyncio.sleep(0)  # let a streaming borrow start, as on a live loop
                ears.end_utterance()  # still talking at the clip's end: decide on what was said
                result = await heard if started else None
                await ears.stop()
                return result

            async def one(i: int) -> None:
                async with limit:
                    ears = Ears(pool, models, FakeClock(), front_end=FRONT_END)
                    try:
                        for t, (clip, phrases, closed) in enumerate(calls[i]):
                            result = await turn(ears, clip, phrases, closed)
                            out[i][t] = result if result is not None else out[i][t]
                    finally:
                        await ears.aclose()

            await asyncio.gather(*(one(i) for i in range(len(calls))))
    finally:
        models.close()
    return out


# ---------------------------------------------------------------- confusion-aware training cache


BUILD_BABBLE_SNRS = (10.0, 6.0, 14.0)
"""`--heard-babble N`: the k-th extra babble clip of each phrase is mixed at the k-th of these SNRs (in turn)."""


def build_heard(flow_path: pathlib.Path, quick: bool, babble_clips: int = 0) -> pathlib.Path:
    """The flow's English phrases, spoken and degraded, decoded by the engine's path → `<flow>.heard.<engine>.tsv`,
    keeping the flow's confusions (`confusions`). Each phrase is said three times: by Festival and an espeak-ng voice,
    clean, and by a third voice under one of six degradations in turn; `babble_clips` more in babble (another
    voice each, `BUILD_BABBLE_SNRS`).

    Only the flow's own phrases are spoken (never an evaluation row); the noise is made from flow
    phrases too, with other seeds and levels than the evaluation's conditions."""
    from ivr.speech.flow_intents import load_flow_intents

    intents = load_flow_intents(flow_path)
    rows = [(p, i) for i, by_lang in intents.phrases.items() for p in by_lang.get("en", ())]
    if quick:
        rows = rows[::5]
    voices = installed_voices()
    festival = [v for v in voices if v.name.startswith("festival:")]
    espeak = [v for v in voices if v.name.startswith("espeak:")]
    texts = [p for p, _ in rows]
    babble = babble_noise(espeak[::-1], texts, seed=101)
    street = street_noise(45.0, seed=102)
    more_babble = babble_noise(festival + espeak, texts[::-1], seed=103) if babble_clips else babble
    degrade = [noisy(babble, 331, 12.0), noisy(street, 443, 8.0), faster(0.9), faster(1.1), louder(-27.0),
               lossy(0.03)]
    jobs: list[tuple[str, Audio]] = []
    for k, (text, intent) in enumerate(rows):
        jobs.append((intent, render(festival[0] if festival else espeak[0], text)))
        voice = espeak[k % len(espeak)]
        jobs.append((intent, render(voice, text)))
        other = voices[(k * 7 + 3) % len(voices)]
        jobs.append((intent, degrade[k % len(degrade)](render(other, text), k)))
        for j in range(babble_clips):
            talker = voices[(k * 5 + 2 * j + 1) % len(voices)]
            snr = BUILD_BABBLE_SNRS[j % len(BUILD_BABBLE_SNRS)]
            jobs.append((intent, noisy(more_babble, 577, snr)(render(talker, text), k + 1009 * j)))
    print(f"speech_eval: decoding {len(jobs)} training clips ...", file=sys.stderr, flush=True)
    _, phrases = ask_inputs_for(flow_path)
    heard = decode_cached([a for _, a in jobs], phrases)
    said = {t.lower() for t in texts}
    pairs = sorted({(h.text, intent) for (intent, _), h in zip(jobs, heard, strict=True)
                    if h.text.strip() and h.text not in said})
    kept = confusions(flow_path, pairs)
    spec = english_spec()
    built_in = {EngineKind.WHISPER: "built-in tiny.en", EngineKind.POCKETSPHINX: "built-in en-us",
                EngineKind.MOONSHINE: "built-in base-en"}
    model = spec.path.name if spec.path is not None else built_in.get(spec.engine, "built-in")
    model += "" if spec.engine.streams else f", beam {spec.beam}"
    if spec.engine is EngineKind.POCKETSPHINX:
        model += f", mllr {'telephone' if MLLR == DEFAULT_MLLR else MLLR}"
    command = ("python -m bench.speech_eval --build-heard" + (f" --engine {ENGINE.value}" if ENGINE else "")
               + (f" --beam {BEAM}" if BEAM else "")
               + (f" --heard-babble {babble_clips}" if babble_clips else "") + (" --quick" if quick else ""))
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = heard_path(HEARD_AT, spec.engine.value)
    out.write_text(
        f"# engine: {spec.engine.value} ({model}) · built by `{command}` · {when} · tree {_tree()}\n"
        "# What that English recognizer heard for this flow's own phrases (Festival and espeak-ng voices, clean and\n"
        "# degraded; never evaluation rows), kept where the flow's classifier, trained on its phrases alone, would\n"
        f"# not act on the right intent ({len(kept)} of {len(pairs)} heard texts). The flow loader trains on these\n"
        "# as well, weighed below the phrases (ivr.flow.loader.read_heard). Specific to the engine above.\n"
        + "".join(f"{text}\t{intent}\ten\n" for text, intent in kept),
        encoding="utf-8",
    )
    return out


def confusions(flow_path: pathlib.Path, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (heard text, intent) pairs the flow's `need` question, its classifier trained on the flow's phrases alone,
    would not act on rightly (a wrong intent, a confirm, a re-ask): the recognizer's confusions. The texts it already
    acts on rightly teach nothing new and, trained on, push correctly heard sentences onto wrong intents (dev)."""
    loaded = load_text(flow_path.read_text(encoding="utf-8"), str(flow_path), heard={})
    assert loaded.flow is not None, loaded.errors
    node = loaded.flow.spec.nodes[NODE]
    assert isinstance(node, AskNode)
    return [(text, intent) for text, intent in pairs
            if not (v := decide(node, loaded.flow.classifier, SpeechInput(text, 1.0, "en"), intent)).right
            or v.action != "act"]


def _tree() -> str:
    """The checkout's commit (`+` when it has local changes), for a built file's provenance."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+" if dirty else "")


def ask_inputs_for(flow_path: pathlib.Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    loaded = check_file(flow_path, classifier_factory=None)
    assert loaded.flow is not None, loaded.errors
    node = loaded.flow.spec.nodes[NODE]
    assert isinstance(node, AskNode)
    return ask_inputs(loaded.flow, node, "en")


# ---------------------------------------------------------------- the audio set


@dataclass(frozen=True, slots=True)
class Clip:
    """One evaluation clip: a row said by a voice under a condition."""

    condition: Condition
    voice: Voice
    row: int
    """The row's index in its split: picks the voice of a one-voice condition and seeds its degradation."""
    expected: str
    audio: Audio

    def say(self, text: str) -> Audio:
        """`text` said by the same voice under the same condition (a caller's next answer on the same line)."""
        return self.condition.apply(render(self.voice, text), self.row)


def audio_args(parser: argparse.ArgumentParser) -> None:
    """The options that pick the audio set (`audio_jobs`)."""
    parser.add_argument("--quick", action="store_true", help="every 3rd row, two voices: a smoke run")
    parser.add_argument("--set", default="eval", choices=("eval", "dev"), help="which split (dev: tuning)")
    parser.add_argument("--conditions", default="", help="comma-separated condition names (default: all)")
    parser.add_argument("--voices", default="", help="comma-separated voice names (default: all installed)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N audio rows (0: all)")
    parser.add_argument("--step", type=int, default=1, help="every N-th audio row (after --limit)")
    parser.add_argument("--engine", default="", choices=("", *(e.value for e in EngineKind if e.value != "vosk")),
                        help="the English recognizer (default: the engine's, `asr_engine`)")
    parser.add_argument("--answers", default="", choices=("", *(e.value for e in ANSWERS_ENGINES)),
                        help="the English answers engine, for closed turns (re-ask answers, yes/no); default: none "
                             "with --engine, else the engine's")
    parser.add_argument("--beam", type=int, default=0, choices=range(1, MAX_BEAM + 1), metavar="N",
                        help="Whisper's or Moonshine's beam (default: the engine's; `asr_engine: moonshine` is 3)")


def heard_args(parser: argparse.ArgumentParser) -> None:
    """`--heard`: which confusion-aware training file the flow's classifier trains on (`flow_heard`)."""
    parser.add_argument("--heard", default="",
                        help="a heard file to train on (e.g. var/speech_eval/hotline.heard.moonshine.tsv after "
                             "--build-heard); default: the flow's own for the English engine the bench runs "
                             "(flows/hotline.heard.<engine>.tsv), as the engine loads it; none: phrases only")


def flow_heard(args: argparse.Namespace) -> dict[str, list[str]]:
    """The heard examples `--heard` names: by default the flow's own file for the English engine the bench hears with
    (`heard_source`: what the engine trains on when that engine is configured). Call after `use_engine`."""
    if args.heard == "none":
        return {}
    return read_heard_file(args.heard) if args.heard else read_heard(FLOW, english_spec().engine.value)


def heard_label(args: argparse.Namespace) -> str:
    """Where `flow_heard`'s lines come from, for a report."""
    if args.heard:
        return str(args.heard)
    source = heard_source(FLOW, english_spec().engine.value)
    where = f"{source.parent.name}/{source.name}" if source is not None else "no heard file"
    return f"{where}, as the engine loads it with {english_spec().engine.value}"


def use_engine(args: argparse.Namespace) -> None:
    """The English recognizer `--engine` names, for every decode from now on."""
    global ENGINE, ANSWERS, BEAM
    ENGINE = EngineKind(args.engine) if args.engine else None
    ANSWERS = EngineKind(args.answers) if args.answers else None
    BEAM = args.beam or None


def audio_jobs(args: argparse.Namespace) -> tuple[list[tuple[str, str, str]], list[Voice], list[Clip]]:
    """The split's English rows, the voices, and the clips: every voice clean, one voice per row (Festival on
    even rows, espeak-ng's in turn on odd ones) for each degraded condition, as `audio_args` chose them."""
    indexed = list(enumerate(read_eval_rows(EVAL / f"{args.set}_en.tsv")))
    if args.quick:
        indexed = indexed[::3]
    voices = installed_voices()
    if args.quick:
        voices = voices[:2]
    if args.voices:
        wanted = args.voices.split(",")
        voices = [v for v in voices if v.name in wanted]
        assert voices, f"no installed voice among {wanted}"
    if args.limit:
        indexed = indexed[: args.limit]
    indexed = indexed[:: max(1, args.step)]
    festival = [v for v in voices if v.name.startswith("festival:")]
    espeak = [v for v in voices if v.name.startswith("espeak:")]
    print(f"speech_eval: rendering {len(indexed)} rows x {len(voices)} voices ...", file=sys.stderr, flush=True)
    # Noise made from voices saying the *dev* rows, so no evaluation sentence is also noise.
    dev_texts = [u for u, _, _ in read_eval_rows(EVAL / "dev_en.tsv")]
    babble = babble_noise(espeak[1:] + festival, dev_texts, seed=11)
    street = street_noise(60.0, seed=12)
    chosen_conditions = conditions(babble, street)
    if args.conditions:
        chosen_conditions = [c for c in chosen_conditions if c.name in args.conditions.split(",")]
    clips = []
    for cond in chosen_conditions:
        for i, (text, expected, _) in indexed:
            one = festival[0] if festival and (i % 2 == 0 or not espeak) else espeak[i % len(espeak)]
            for v in voices if cond.all_voices else [one]:
                clips.append(Clip(cond, v, i, expected, cond.apply(render(v, text), i)))
    return [row for _, row in indexed], voices, clips


# ---------------------------------------------------------------- report


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    audio_args(parser)
    parser.add_argument("--text-only", action="store_true",
                        help="only the typed-text table (no rendering or decoding): seconds, not an hour")
    parser.add_argument("--mllr", default="", help="MLLR transform: none, telephone or a path (default: the engine's)")
    parser.add_argument("--front-end", default="on", choices=("on", "off"),
                        help="off: the recognizer hears the endpointed audio without level control or clipping repair")
    parser.add_argument("--sweep", action="store_true", help="also tabulate right/false accepts per act threshold")
    parser.add_argument("--build-heard", action="store_true",
                        help="(re)build the flow's confusion-aware training file <flow>.heard.<engine>.tsv under "
                             "var/speech_eval/ (with --engine's recognizer) and exit")
    parser.add_argument("--heard-babble", type=int, default=0, metavar="N",
                        help="with --build-heard: N more clips of each phrase in babble (made of the flow's phrases)")
    heard_args(parser)
    args = parser.parse_args()
    import logging

    import structlog

    # The call's Ears log each utterance at info: keep the report on stdout readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    use_engine(args)
    if args.mllr:
        global MLLR
        MLLR = {"none": None, "telephone": TELEPHONE_MLLR}.get(args.mllr, pathlib.Path(args.mllr))
    if args.front_end == "off":
        global FRONT_END
        FRONT_END = FrontEndConfig(target_dbfs=None, declip=False)
    if args.build_heard:
        print(f"wrote {build_heard(FLOW, args.quick, args.heard_babble)}", file=sys.stderr)
        return
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # The same decoded audio scored by two classifiers: the flow's phrases alone (before), and phrases +
    # the recognizer's outputs for them (after: the flow's heard file for the engine scored, what a site with it
    # loads, or `--heard`).
    baseline = load_text(FLOW.read_text(encoding="utf-8"), str(FLOW), heard={})
    loaded = load_text(FLOW.read_text(encoding="utf-8"), str(FLOW), heard=flow_heard(args))
    assert loaded.flow is not None and baseline.flow is not None, loaded.errors
    flow = loaded.flow
    node = flow.spec.nodes[NODE]
    assert isinstance(node, AskNode)
    classifiers = {"phrases only": baseline.flow.classifier, "phrases + heard": flow.classifier}
    names = list(classifiers)
    heads = " | ".join(f"right ({n}) | false acc. ({n}) | re-asked ({n})" for n in names)
    rule = "|---|---|" + "---|" * (3 * len(names))

    def cells(verdicts_by: dict[str, list[Verdict]], pick: Callable[[int], bool] = lambda i: True) -> str:
        out = []
        for n in names:
            sub = [v for i, v in enumerate(verdicts_by[n]) if pick(i)]
            r, _, fa, ra = summary(sub)
            out += [pct(r), pct(fa), pct(ra)]
        return " | ".join(out)

    lines = ["### Text (typed, confidence 1): the flow's classifier and decision\n",
             f"| set | rows | {heads} |", rule]
    all_text: dict[str, list[Verdict]] = {n: [] for n in names}
    for lang in ("en", "cmn"):
        rows = read_eval_rows(EVAL / f"{args.set}_{lang}.tsv")
        by = {n: [decide(node, c, SpeechInput(u, 1.0, lang), e) for u, e, _ in rows] for n, c in classifiers.items()}
        for n in names:
            all_text[n] += by[n]
        lines.append(f"| {args.set}_{lang} | {len(rows)} | {cells(by)} |")
        for kind in sorted({k for _, _, k in rows}):
            idx = {i for i, (_, _, k) in enumerate(rows) if k == kind}
            lines.append(f"| &nbsp;&nbsp;{kind} | {len(idx)} | {cells(by, idx.__contains__)} |")
    lines.append(f"| zh+en | {len(all_text[names[0]])} | {cells(all_text)} |")
    if args.text_only:
        print_header(args, started)
        print("\n".join(lines))
        return

    rows, voices, clips = audio_jobs(args)
    _, phrases = ask_inputs(flow, node, "en")
    jobs = [(c.condition.name, c.voice.name, c.expected, c.audio) for c in clips]  # condition, voice, expected, audio
    print(f"speech_eval: decoding {len(jobs)} clips ...", file=sys.stderr, flush=True)
    heard = decode_cached([j[3] for j in jobs], phrases)
    verdicts = {n: [decide(node, c, h, j[2]) for j, h in zip(jobs, heard, strict=True)]
                for n, c in classifiers.items()}

    lines += ["", f"### English audio: {len(rows)} held-out rows, {len(voices)} voices, "
              f"{len(jobs)} decoded clips\n", f"| condition | clips | {heads} |", rule]
    for cond_name in dict.fromkeys(j[0] for j in jobs):
        idx = {i for i, j in enumerate(jobs) if j[0] == cond_name}
        lines.append(f"| {cond_name} | {len(idx)} | {cells(verdicts, idx.__contains__)} |")
    lines.append(f"| **all** | {len(jobs)} | {cells(verdicts)} |")
    strict = {n: [decide(node, c, h, j[2], act=DEV_ACT) for j, h in zip(jobs, heard, strict=True)]
              for n, c in classifiers.items()}
    lines += ["", f"What-if, recognized speech acted on only at >= {DEV_ACT} (the act threshold at which the dev "
              "split's false accepts fell to <= 2%; below it the caller is asked to confirm):\n",
              f"| condition | clips | {heads} |", rule]
    for cond_name in dict.fromkeys(j[0] for j in jobs):
        idx = {i for i, j in enumerate(jobs) if j[0] == cond_name}
        lines.append(f"| {cond_name} | {len(idx)} | {cells(strict, idx.__contains__)} |")
    lines.append(f"| **all** | {len(jobs)} | {cells(strict)} |")
    if args.sweep:
        lines += ["", "Act-threshold sweep (phrases only; choose on `--set dev`):\n",
                  "| act | right | acted at once, right | false acc. | false acc. clean | false acc. noisy (10 dB) |",
                  "|---|---|---|---|---|---|"]
        for act in (0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
            swept = [decide(node, classifiers[names[0]], h, j[2], act=act) for j, h in zip(jobs, heard, strict=True)]
            clean = [v for v, j in zip(swept, jobs, strict=True) if j[0] == "clean"]
            noisy = [v for v, j in zip(swept, jobs, strict=True) if j[0].endswith(" 10 dB")]
            lines.append(f"| {act} | {pct(summary(swept)[0])} | {pct(summary(swept)[1])} | {pct(summary(swept)[2])} "
                         f"| {pct(summary(clean)[2])} "
                         f"| {pct(summary(noisy)[2])} |")
    lines += ["", "Clean, per voice:\n", f"| voice | clips | {heads} |", rule]
    for v in voices:
        idx = {i for i, j in enumerate(jobs) if j[0] == "clean" and j[1] == v.name}
        lines.append(f"| {v.name} | {len(idx)} | {cells(verdicts, idx.__contains__)} |")
    print_header(args, started)
    print("\n".join(lines))


def print_header(args: argparse.Namespace, started: str) -> None:
    print("## Speech evaluation: held-out phrasings and audio (issue 21)\n")
    flags = "".join(f" {f}" for f, on in (("--quick", args.quick), ("--set dev", args.set == "dev"),
                                           ("--text-only", args.text_only),
                                           (f"--conditions {args.conditions!r}", bool(args.conditions)),
                                           (f"--voices {args.voices}", bool(args.voices)),
                                           (f"--limit {args.limit}", bool(args.limit)),
                                           (f"--step {args.step}", args.step > 1),
                                           (f"--engine {args.engine}", bool(args.engine)),
                                           (f"--answers {args.answers}", bool(args.answers)),
                                           (f"--beam {args.beam}", bool(args.beam)),
                                           (f"--heard {args.heard}", bool(args.heard)),
                                           (f"--mllr {args.mllr}", bool(args.mllr)), ("--sweep", args.sweep),
                                           ("--front-end off", args.front_end == "off")) if on)
    print(f"Command: `python -m bench.speech_eval{flags}` · machine: {platform.machine()}, nproc {os.cpu_count()} "
          f"(shared with other engineers' work while measured) · {started}\n")
    print(f"Classifier \"phrases + heard\": the flow's phrases + {sum(map(len, flow_heard(args).values()))} heard "
          f"lines ({heard_label(args)}).\n")


if __name__ == "__main__":
    main()
