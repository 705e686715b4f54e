"""The library side of `ivr nlu` and `ivr asr` (the CLI only parses arguments and calls these)."""

from __future__ import annotations

import dataclasses
import time
import wave
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ivr.speech.errors import SpeechError
from ivr.speech.evaluation import evaluate, read_eval_tsv
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.recognizer import CALL_RATE_HZ, EngineKind

__all__ = ["configured_model", "read_call_audio", "run_asr", "run_nlu"]

Print = Callable[[str], None]


def run_nlu(
    flow: str,
    text: str | None,
    *,
    eval_path: str | None,
    languages: Sequence[str] | None,
    out: Print,
    err: Print,
) -> int:
    """Classify one text, or score a held-out TSV; 0 ok, 1 on a load/read failure, 2 on misuse."""
    if (text is None) == (eval_path is None):
        err("ivr nlu: give either TEXT or --eval FILE.tsv")
        return 2
    try:
        intents = load_flow_intents(flow)
        started = time.perf_counter()
        classifier = intents.train(languages or None)
        trained_ms = (time.perf_counter() - started) * 1000
        if eval_path is not None:
            report = evaluate(classifier, read_eval_tsv(eval_path))
            out(f"flow: {flow}  intents: {len(classifier.intents)}  trained in {trained_ms:.0f} ms")
            for line in report.lines():
                out(line)
            return 0
        assert text is not None
        for score in classifier.classify(text):
            out(f"{score.intent:<16} {score.confidence:.3f}")
        return 0
    except SpeechError as exc:
        err(f"ivr nlu: {exc}")
        return 1


def configured_model(dialect: str, configured: Mapping[str, Any]) -> str | None:
    """The Vosk model folder the config's `asr_models` names for `dialect` (a path or `{model: DIR}`)."""
    raw = configured.get(dialect)
    if isinstance(raw, Mapping):
        raw = raw.get("model")
    return None if raw is None or str(raw).strip() == "" else str(raw)


def read_call_audio(path: Path | str) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    """A WAV file as 8 kHz mono int16 (resampled and mixed down when needed)."""
    import soxr

    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise SpeechError(f"{path}: expected 16-bit PCM WAV, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != CALL_RATE_HZ:
        pcm = np.asarray(soxr.resample(pcm, rate, CALL_RATE_HZ), dtype=np.int16)
    return pcm


def run_asr(
    wav: str,
    *,
    engine: str,
    dialect: str,
    model: str | None,
    phrases_file: str | None,
    out: Print,
    err: Print,
    configured: Mapping[str, Any] | None = None,
    model_cache: Path | None = None,
) -> int:
    """Decode a WAV as call audio, print transcript, confidence, n-best and timing.

    `configured` is the config's `asr_models`: without `--model`, a Vosk dialect uses its model
    folder from there, and a dialect with none configured is refused up front, saying how to fix it. `model_cache`
    is the config's `model_cache_dir` (where a shipped Moonshine model is converted; None: the default)."""
    from ivr.speech.models import ModelSpec, SpeechModels

    try:
        kind = EngineKind(engine)
        if model is None and kind is EngineKind.VOSK:
            model = configured_model(dialect, configured or {})
            if model is None:
                err(
                    f"ivr asr: no Vosk model configured for dialect {dialect!r}: pass --model DIR, or set "
                    f"`asr_models: {{{dialect}: {{engine: vosk, model: DIR}}}}` in the config "
                    f"(IVR_ASR_MODELS / --set asr_models=...). A Chinese model is a download: see docs/SPEECH.md."
                )
                return 1
        phrases: list[str] = []
        if phrases_file is not None:
            phrases = [
                ln.strip() for ln in Path(phrases_file).read_text(encoding="utf-8").splitlines() if ln.strip()
            ]
        started = time.perf_counter()
        spec = ModelSpec(dialect, kind, None if model is None else Path(model))
        models = SpeechModels.load([spec if model_cache is None else dataclasses.replace(spec, converted=model_cache)])
        recognizer = models.open(dialect)
        load_s = time.perf_counter() - started
        audio = read_call_audio(wav)
        recognizer.set_phrases(phrases)
        started = time.perf_counter()
        for i in range(0, len(audio), 160):
            recognizer.accept(audio[i : i + 160])
        fed_s = time.perf_counter() - started
        result = recognizer.finish()
        total_s = time.perf_counter() - started
    except (SpeechError, OSError, ValueError) as exc:
        err(f"ivr asr: {exc}")
        return 1
    out(f"transcript: {result.text}")
    out(f"confidence: {result.confidence:.3f}")
    for h in result.nbest[1:]:
        out(f"  alt: {h.text} ({h.confidence:.3f})")
    out(
        f"timing: audio {result.audio_s:.2f} s, decode {total_s * 1000:.0f} ms "
        f"(RTF {total_s / max(result.audio_s, 1e-9):.3f}), final after last frame "
        f"{(total_s - fed_s) * 1000:.0f} ms, model load {load_s:.2f} s"
    )
    return 0
