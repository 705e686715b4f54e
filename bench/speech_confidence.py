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

Cells: right (acted on or confirmed, right intent) / acted on at once and right / false accept (a wrong
intent acted on). `--step N` decodes every N-th row.

    .venv/bin/python -m bench.speech_confidence [--set dev|eval] [--step 2] [--conditions clean,...]
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import pathlib
import platform
import sys
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


def _start_worker(mllr: bool, phrases: tuple[str, ...]) -> None:
    global _recognizer
    _recognizer = PocketSphinxRecognizer(PocketSphinxModel.load("en", mllr=DEFAULT_MLLR if mllr else None))
    _recognizer.set_phrases(phrases)


def _decode(clip: se.Audio) -> dict[str, Any]:
    rec = _recognizer
    assert rec is not None
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
    return {"best": decoder.hyp().hypstr if result.text else "", "texts": texts,
            "nbest": [(h.text, h.confidence) for h in result.nbest]}


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


def jobs_for(split: str, step: int, wanted: Sequence[str]) -> list[Job]:
    """bench.speech_eval's clips: every voice clean, one voice per row for each degraded condition."""
    rows = read_eval_rows(se.EVAL / f"{split}_en.tsv")[::step]
    voices = se.installed_voices()
    festival = [v for v in voices if v.name.startswith("festival:")]
    espeak = [v for v in voices if v.name.startswith("espeak:")]
    babble = se.babble_noise(espeak[1:] + festival, [u for u, _, _ in read_eval_rows(se.EVAL / "dev_en.tsv")], seed=11)
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


def decode_all(jobs: list[Job], mllr: bool) -> list[dict[str, Any]]:
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2, _start_worker, (mllr, PHRASES)) as pool:
        return pool.map(_decode, [j["audio"] for j in jobs], chunksize=8)


def main() -> None:
    global PHRASES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="dev", choices=("dev", "eval"))
    parser.add_argument("--step", type=int, default=1, help="decode every N-th row")
    parser.add_argument("--conditions", default="", help="comma-separated condition names (default: all)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loaded = load_text(se.FLOW.read_text(encoding="utf-8"), str(se.FLOW), heard={})
    assert loaded.flow is not None, loaded.errors
    node = loaded.flow.spec.nodes[se.NODE]
    assert isinstance(node, AskNode)
    _, PHRASES = ask_inputs(loaded.flow, node, "en")
    jobs = jobs_for(args.set, args.step, [c for c in args.conditions.split(",") if c])
    print(f"speech_confidence: decoding {len(jobs)} clips twice ...", file=sys.stderr, flush=True)
    plain, adapted = decode_all(jobs, mllr=False), decode_all(jobs, mllr=True)
    def agreeing(decodes: list[dict[str, Any]]) -> Callable[[int], list[Hypothesis]]:
        return lambda i: agreement(decodes[i]["best"], decodes[i]["texts"]) if decodes[i]["best"] else []

    arms: list[tuple[str, Callable[[int], list[Hypothesis]], float, float]] = [
        ("before: no transform, agreement, 0.6 / 0.35", agreeing(plain), 0.6, 0.35),
        ("transform, agreement, 0.6 / 0.35 (the old opt-in)", agreeing(adapted), 0.6, 0.35),
        ("after: transform, engine confidence, 0.6 / 0.2",
         lambda i: [Hypothesis(t, c) for t, c in adapted[i]["nbest"]], 0.6, 0.2),
    ]
    outcomes = [[decide(node, loaded.flow.classifier, hyps(i), act, confirm) for i in range(len(jobs))]
                for _, hyps, act, confirm in arms]

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
    print(f"Command: `python -m bench.speech_confidence --set {args.set} --step {args.step}"
          f"{f' --conditions {args.conditions!r}' if args.conditions else ''}` · machine: {platform.machine()}, "
          f"nproc {os.cpu_count()} · {started}\n")
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
