"""What the recognizer's confidence does to the `need` decision: before / after on one set of decodes.

Each English row of a split (`--set dev` to choose settings, `eval` to score once) is spoken by every
installed voice (clean) and degraded as `bench.speech_eval` does (its renders, noises and conditions), then
decoded once per acoustic model (without and with the telephone MLLR transform) by PocketSphinx in worker
processes fed 0.2 s chunks, as a live call's streaming session is (`ivr.speech.pool.STREAM_BATCH_SAMPLES`;
PocketSphinx's live cepstral mean makes a decode depend on its chunks). Every decode keeps its best text, its
n-best texts and the engine's own result, so three arms are scored on the same audio:

* before: no transform, n-best agreement confidence (the share of the n-best list that repeats a text, the
  engine's until this change), the `need` node's act 0.6 / confirm 0.35;
* the old opt-in: the transform with agreement, 0.6 / 0.35;
* after: the transform with the engine's confidence (path-score posterior x word posterior), 0.6 / 0.2.

With `--decoders 'SPEC;SPEC'` each spec is decoded instead and scored with the engine's confidence at 0.6 / 0.2:
a spec is `none`, `telephone` (the engine's transform) or an MLLR file, then PocketSphinx settings as NAME=VALUE
(`lw=8`, `mean=FILE` for MAP-adapted means), `warps=1.12,...` (the warps searched on a doubtful first utterance,
`warps=` none; default: the engine's) and `audio_warp=A` (every frequency of the clip scaled by A first). The
default arms decode `none warps=` and `telephone warps=`. `--pick 1,2?` adds an arm taking, per clip, the decode
with the best acoustic score per frame among those specs (with `?` only when the first is doubtful). The decode
CPU per clip of each spec goes to stderr.

Cells: right (acted on or confirmed, right intent) / acted on at once and right / false accept (a wrong
intent acted on). `--step N` decodes every N-th row.

    .venv/bin/python -m bench.speech_confidence [--set dev|eval] [--step 2] [--conditions clean,...]
        [--voices festival:kal_diphone,...] [--decoders 'telephone warps=;telephone lw=8'] [--pick 1,2?]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import multiprocessing
import os
import pathlib
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import speech_eval as se  # noqa: E402
from ivr.call import Hypothesis, SpeechInput  # noqa: E402
from ivr.flow.loader import load_text  # noqa: E402
from ivr.flow.model import AskNode  # noqa: E402
from ivr.flow.nodes.menus import ask_inputs, classify_speech  # noqa: E402
from ivr.speech.evaluation import read_eval_rows  # noqa: E402
from ivr.speech.pocketsphinx_engine import (  # noqa: E402
    _NBEST,
    DEFAULT_MLLR,
    PocketSphinxModel,
    PocketSphinxRecognizer,
)
from ivr.speech.pool import STREAM_BATCH_SAMPLES  # noqa: E402

Job = dict[str, Any]
"""One clip: condition, voice, expected intent, and after decoding its texts and the engine's n-best."""

_recognizer: PocketSphinxRecognizer | None = None


def decoder_model(spec: str) -> PocketSphinxModel:
    """The en-us model a decoder spec names: `none`, `telephone` (the engine's default transform) or an MLLR
    file, then decoder settings as NAME=VALUE (`telephone lw=8`, `none mean=DIR/means`, `warps=1.12`)."""
    head, *settings = spec.split()
    mllr = None if head == "none" else DEFAULT_MLLR if head == "telephone" else pathlib.Path(head)
    model = PocketSphinxModel.load("en", mllr=mllr)
    pairs = [(k, v) for k, _, v in (item.partition("=") for item in settings)]
    options = tuple((k, v) for k, v in pairs if k not in ("audio_warp", "warps"))
    warps = next((tuple(float(w) for w in v.split(",") if w) for k, v in pairs if k == "warps"), model.warps)
    return dataclasses.replace(model, decoder_options=options, warps=warps)


def audio_warp(spec: str) -> float:
    """The spec's `audio_warp=A`: every frequency of the clip scaled by A (resampled) before decoding; 1 if none."""
    return next((float(v) for k, _, v in (item.partition("=") for item in spec.split()[1:]) if k == "audio_warp"), 1.0)


_warp = 1.0


def _start_worker(spec: str, phrases: tuple[str, ...]) -> None:
    global _recognizer, _warp
    _recognizer = PocketSphinxRecognizer(decoder_model(spec))
    _recognizer.set_phrases(phrases)
    _warp = audio_warp(spec)


def _decode(clip: se.Audio) -> dict[str, Any]:
    rec = _recognizer
    assert rec is not None
    cpu = time.process_time()
    if _warp != 1.0:
        clip = se.speed(clip, _warp)
    rec.restart_call()
    audio = np.concatenate([np.zeros(int(se.LEAD_S * se.RATE), np.int16), clip,
                            np.zeros(int(se.TRAIL_S * se.RATE), np.int16)])
    rec.set_phrases(PHRASES)
    for k in range(0, len(audio), STREAM_BATCH_SAMPLES):
        rec.accept(audio[k : k + STREAM_BATCH_SAMPLES])
    result = rec.finish()
    decoder = rec._decoder  # the utterance's decoder: its n-best texts, for the agreement arm
    texts = [] if not result.text else [n.hypstr for _, n in zip(range(_NBEST), decoder.nbest(), strict=False)
                                        if n is not None]
    hyp = decoder.hyp()
    return {"best": hyp.hypstr if result.text else "", "texts": texts,
            "nbest": [(h.text, h.confidence) for h in result.nbest],
            "score": decoder.get_logmath().log(hyp.best_score) / max(1, decoder.n_frames()) if result.text else -1e9,
            "cpu": time.process_time() - cpu}


PHRASES: tuple[str, ...] = ()


def agreement(best: str, texts: Sequence[str]) -> list[Hypothesis]:
    """The confidence this change replaced: 0.2 + 0.8 x the share of the n-best list that is the text."""
    rest = [t for t in texts if t]
    if not rest:
        return [Hypothesis(best, 0.5)]
    counts: dict[str, int] = {best: 0}
    for t in rest:
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts, key=lambda t: (t != best, -counts[t]))
    return [Hypothesis(t, 0.2 + 0.8 * counts[t] / len(rest)) for t in ranked]


def decide(node: AskNode, classifier: Any, hyps: Sequence[Hypothesis], act: float, confirm: float) -> tuple[str, str]:
    """(intent or "", action) as the `need` node decides with these thresholds."""
    heard = SpeechInput(hyps[0].text, hyps[0].confidence, "en", tuple(hyps)) if hyps else SpeechInput("", 0.0, "en")
    intent, confidence, _ = classify_speech(node, classifier, heard)
    if intent is None:
        return "", "reask"
    if confidence >= act:
        return intent, "act"
    return intent, "confirm" if confidence >= confirm else "reask"


def jobs_for(split: str, step: int, wanted: Sequence[str], voice_names: Sequence[str] = ()) -> list[Job]:
    """bench.speech_eval's clips: every voice clean, one voice per row for each degraded condition."""
    rows = read_eval_rows(se.EVAL / f"{split}_en.tsv")[::step]
    installed = se.installed_voices()
    babble = se.babble_noise([v for v in installed if v.name.startswith("espeak:")][1:]
                             + [v for v in installed if v.name.startswith("festival:")],
                             [u for u, _, _ in read_eval_rows(se.EVAL / "dev_en.tsv")], seed=11)
    voices = [v for v in installed if not voice_names or v.name in voice_names]
    festival = [v for v in voices if v.name.startswith("festival:")]
    espeak = [v for v in voices if v.name.startswith("espeak:")]
    jobs: list[Job] = []
    for cond in se.conditions(babble, se.street_noise(60.0, seed=12)):
        if wanted and cond.name not in wanted:
            continue
        for i, (text, expected, _) in enumerate(rows):
            one = festival[0] if festival and (i % 2 == 0 or not espeak) else espeak[i % len(espeak)]
            for v in voices if cond.all_voices else [one]:
                jobs.append({"cond": cond.name, "voice": v.name, "expected": expected,
                             "audio": cond.apply(se.render(v, text), i)})
    return jobs


Arm = tuple[str, Callable[[int], list[Hypothesis]], float, float]
"""(name, clip index → the n-best the flow hears, act threshold, confirm threshold)."""


DOUBT = 0.6
"""`--pick 1,2,3?`: the other decodes count only when the first's best confidence is under this (the act line)."""


def arms_for(specs: Sequence[str], decodes: Sequence[list[dict[str, Any]]], picks: Sequence[tuple[list[int], bool]],
             engine_only: bool) -> list[Arm]:
    """The arms scored: before / old opt-in / after on `none` and `telephone`, or one per spec, plus the picks."""
    def engine(runs: list[dict[str, Any]]) -> Callable[[int], list[Hypothesis]]:
        return lambda i: [Hypothesis(t, c) for t, c in runs[i]["nbest"]]

    def agreeing(runs: list[dict[str, Any]]) -> Callable[[int], list[Hypothesis]]:
        return lambda i: agreement(runs[i]["best"], runs[i]["texts"]) if runs[i]["best"] else []

    def best_of(among: Sequence[int], doubt: bool) -> Callable[[int], list[Hypothesis]]:
        def hyps(i: int) -> list[Hypothesis]:
            first = engine(decodes[among[0]])(i)
            if doubt and first and first[0].confidence >= DOUBT:
                return first
            return engine(decodes[max(among, key=lambda k: decodes[k][i]["score"])])(i)
        return hyps

    if engine_only:
        arms: list[Arm] = [(f"`{spec}`", engine(runs), 0.6, 0.2) for spec, runs in zip(specs, decodes, strict=True)]
    else:
        plain, adapted = decodes
        arms = [("before: no transform, agreement, 0.6 / 0.35", agreeing(plain), 0.6, 0.35),
                ("transform, agreement, 0.6 / 0.35 (the old opt-in)", agreeing(adapted), 0.6, 0.35),
                ("after: transform, engine confidence, 0.6 / 0.2", engine(adapted), 0.6, 0.2)]
    return arms + [(f"best score of {'/'.join(str(k + 1) for k in among)}{' if doubtful' if doubt else ''}",
                    best_of(among, doubt), 0.6, 0.2) for among, doubt in picks]


def decode_all(jobs: list[Job], spec: str) -> list[dict[str, Any]]:
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2, _start_worker, (spec, PHRASES)) as pool:
        return pool.map(_decode, [j["audio"] for j in jobs], chunksize=8)


def main() -> None:
    global PHRASES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="dev", choices=("dev", "eval"))
    parser.add_argument("--step", type=int, default=1, help="decode every N-th row")
    parser.add_argument("--conditions", default="", help="comma-separated condition names (default: all)")
    parser.add_argument("--voices", default="", help="comma-separated voice names (default: every installed one)")
    parser.add_argument("--decoders", default="", help="';'-separated decoder specs (`telephone lw=8;none`), each "
                        "scored with the engine's confidence at 0.6 / 0.2, instead of the before / after arms")
    parser.add_argument("--pick", action="append", default=[],
                        help="extra arm: per clip, the decode with the best path score among these spec numbers "
                             "(1-based, comma-separated), e.g. a warp chosen per caller; a trailing ? looks past the "
                             "first only when its confidence is under the act line")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loaded = load_text(se.FLOW.read_text(encoding="utf-8"), str(se.FLOW), heard={})
    assert loaded.flow is not None, loaded.errors
    node = loaded.flow.spec.nodes[se.NODE]
    assert isinstance(node, AskNode)
    _, PHRASES = ask_inputs(loaded.flow, node, "en")
    jobs = jobs_for(args.set, args.step, [c for c in args.conditions.split(",") if c],
                    [v for v in args.voices.split(",") if v])
    specs = [s.strip() for s in args.decoders.split(";") if s.strip()] or ["none warps=", "telephone warps="]
    print(f"speech_confidence: decoding {len(jobs)} clips {len(specs)} times ...", file=sys.stderr, flush=True)
    decodes = [decode_all(jobs, spec) for spec in specs]
    picks = [([int(k) - 1 for k in p.rstrip("?").split(",")], p.endswith("?")) for p in args.pick]
    arms = arms_for(specs, decodes, picks, bool(args.decoders))
    outcomes = [[decide(node, loaded.flow.classifier, hyps(i), act, confirm) for i in range(len(jobs))]
                for _, hyps, act, confirm in arms]
    for spec, runs in zip(specs, decodes, strict=True):
        print(f"decode CPU `{spec}`: {1000 * sum(r['cpu'] for r in runs) / max(1, len(runs)):.0f} ms per clip",
              file=sys.stderr)

    def cells(pick: Callable[[Job], bool]) -> str:
        idx = [i for i, j in enumerate(jobs) if pick(j)]
        out = [str(len(idx))]
        for arm in outcomes:
            n = max(1, len(idx))
            right = sum(arm[i][0] == jobs[i]["expected"] and arm[i][1] != "reask" for i in idx) / n
            acted = sum(arm[i] == (jobs[i]["expected"], "act") for i in idx) / n
            wrong = sum(arm[i][1] == "act" and arm[i][0] != jobs[i]["expected"] for i in idx) / n
            out.append(f"{100 * right:.1f}% / {100 * acted:.1f}% / {100 * wrong:.1f}%")
        return " | ".join(out)

    head = f"| {{}} | clips | {' | '.join(name for name, *_ in arms)} |\n|---|---:|" + "---:|" * len(arms)
    print(f"Command: `python -m bench.speech_confidence {shlex.join(sys.argv[1:])}` · machine: {platform.machine()}, "
          f"nproc {os.cpu_count()} · {started}, load average {os.getloadavg()[0]:.1f} at the end\n")
    def where(key: str, value: str, clean: bool = False, prefix: bool = False) -> Callable[[Job], bool]:
        def pick(j: Job) -> bool:
            hit = str(j[key]).startswith(value) if prefix else j[key] == value
            return hit and (not clean or j["cond"] == "clean")
        return pick

    print(head.format("condition"))
    for cond in dict.fromkeys(j["cond"] for j in jobs):
        print(f"| {cond} | {cells(where('cond', cond))} |")
    for synth, label in (("festival:", "clean, Festival voices"), ("espeak:", "clean, espeak-ng voices")):
        print(f"| {label} | {cells(where('voice', synth, clean=True, prefix=True))} |")
    print(f"| **all** | {cells(lambda j: True)} |\n")
    print(head.format("voice (clean)"))
    for voice in dict.fromkeys(j["voice"] for j in jobs):
        print(f"| {voice} | {cells(where('voice', voice, clean=True))} |")

if __name__ == "__main__":
    main()
