"""NLU benchmark: intent classifier training time, classify latency, and held-out accuracy.

Training runs at every flow (re)load, so it must stay instant: measured on the hotline flow's own
phrases, with its confusion-aware training file (flows/hotline.heard.whisper.tsv) as the default engine
loads it, and on a
synthetic 10 intents x 30 phrases set (alternating rounds). Accuracy is on the held-out caller
phrasings in tests/data/nlu (written before the training phrases were seen; never trained on).
Also: classify and ask-node decision latency (the decision must stay cheap next to decoding), and what
the hotline's act/confirm thresholds promise (calibrated P(right)) against what the dev split observes.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import random
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.flow.loader import read_heard  # noqa: E402
from ivr.speech import IntentClassifier  # noqa: E402
from ivr.speech.evaluation import evaluate, read_eval_tsv  # noqa: E402
from ivr.speech.flow_intents import load_flow_intents  # noqa: E402

REPS = 15


def synthetic(n_intents: int = 10, n_phrases: int = 30) -> dict[str, list[str]]:
    rng = random.Random(7)
    syllables = "理 赔 保 单 查 询 缴 费 借 款 变 更 退 投 诉 人 工 服 务 账 户 银 行 卡 医 院".split()
    words = "claim policy pay loan change cancel complain agent bank card hospital money".split()
    out: dict[str, list[str]] = {}
    for i in range(n_intents):
        key = rng.sample(syllables, 3)
        out[f"intent_{i}"] = [
            "".join(key + rng.sample(syllables, 4))
            if j % 2
            else " ".join([words[i % len(words)], *rng.sample(words, 4)])
            for j in range(n_phrases)
        ]
    return out


TrainingSet = tuple[dict[str, list[str]], dict[str, list[str]]]
"""(examples, heard examples) as `IntentClassifier.train` takes them."""


def timed_train(sets: list[TrainingSet]) -> list[tuple[float, float, IntentClassifier]]:
    """(median, max seconds, classifier) per training set, the sets trained in turn in each of `REPS` rounds."""
    IntentClassifier.train(sets[0][0])  # warm imports
    times: list[list[float]] = [[] for _ in sets]
    clfs: list[IntentClassifier] = []
    for _ in range(REPS):
        clfs = []
        for (examples, heard), spent in zip(sets, times, strict=True):
            t0 = time.perf_counter()
            clfs.append(IntentClassifier.train(examples, heard=heard))
            spent.append(time.perf_counter() - t0)
    return [(statistics.median(t), max(t), c) for t, c in zip(times, clfs, strict=True)]


def decision_times(clf: IntentClassifier, texts: list[str]) -> tuple[float, float, float]:
    """(p50, p95, 10 at once) seconds of the flow's decision for one utterance heard as a 5-best list."""
    from ivr.call import Hypothesis, SpeechInput
    from ivr.flow import check_file
    from ivr.flow.model import AskNode
    from ivr.flow.nodes.menus import classify_speech

    loaded = check_file(ROOT / "flows" / "hotline.yaml", classifier_factory=None)
    assert loaded.flow is not None
    node = loaded.flow.spec.nodes["need"]
    assert isinstance(node, AskNode)
    heard = [
        SpeechInput(t, 0.6, "en", tuple(Hypothesis(v, 0.6 - 0.1 * k) for k, v in enumerate(_variants(t))))
        for t in texts
    ]
    times = []
    for h in heard:
        t0 = time.perf_counter()
        classify_speech(node, clf, h)
        times.append(time.perf_counter() - t0)
    times.sort()
    t0 = time.perf_counter()
    for h in heard[:10]:
        classify_speech(node, clf, h)
    return times[len(times) // 2], times[int(len(times) * 0.95)], time.perf_counter() - t0


def _variants(text: str) -> list[str]:
    """Five n-best-like variants of `text`: itself, then with a word (or character) dropped or doubled."""
    sep = " " if " " in text else ""
    words = text.split() if sep else list(text)
    out = [text]
    for k in range(1, 5):
        w = words[:]
        i = k % max(1, len(w))
        if k % 2:
            del w[i : i + 1]
        else:
            w.insert(i, w[i - 1])
        out.append(sep.join(w))
    return out


def cross_validation(examples: dict[str, list[str]], folds: int = 5) -> tuple[int, int]:
    """(right, total) top-1 over `folds` folds of the flow's own phrases (shuffled with a fixed seed): how well
    the features carry to phrasings the classifier was not trained on, without touching any evaluation row."""
    items = [(p, i) for i, ps in examples.items() for p in ps]
    random.Random(3).shuffle(items)
    right = 0
    for f in range(folds):
        train: dict[str, list[str]] = {}
        for k, (p, i) in enumerate(items):
            if k % folds != f:
                train.setdefault(i, []).append(p)
        clf = IntentClassifier.train(train)
        right += sum(clf.classify(p)[0].intent == i for k, (p, i) in enumerate(items) if k % folds == f)
    return right, len(items)


def calibration_report(clf: IntentClassifier) -> None:
    """What the hotline's thresholds promise (the calibrated probability of being right at that confidence)
    and what they deliver on the dev split (tests/data/eval/dev_*.tsv: tuning rows, not held out)."""
    from ivr.speech.evaluation import read_eval_rows

    eval_dir = ROOT / "tests" / "data" / "eval"
    rows = [r for lang in ("cmn", "en") for r in read_eval_rows(eval_dir / f"dev_{lang}.tsv")]
    scored = [(clf.classify(u)[0], e) for u, e, _ in rows]
    cal = clf.calibrator
    print(f"Calibration: P(right) = sigmoid({cal.slope:.2f} * logit(confidence) + {cal.offset:.2f}) (Platt, fitted at")
    print(f"training on 3 cross-validation folds of the flow's phrases). On the dev split ({len(rows)} rows, typed):\n")
    print("| top confidence | promised P(right) at the lower edge | rows | mean promised | observed right |")
    print("|---|---|---|---|---|")
    for lo, hi in ((0.6, 1.01), (0.35, 0.6), (0.0, 0.35)):
        band = [(s, e) for s, e in scored if lo <= s.confidence < hi]
        right = sum(1 for s, e in band if s.intent == e)
        share = f"{right / len(band):.3f} ({right}/{len(band)})" if band else "-"
        mean = f"{sum(s.p_right for s, _ in band) / len(band):.3f}" if band else "-"
        label = f">= {lo} (act)" if hi > 1 else f"{lo} - {hi}" + (" (confirm)" if lo > 0 else " (re-ask)")
        edge = f"{cal(lo):.2f}" if lo > 0 else "-"
        print(f"| {label} | {edge} | {len(band)} | {mean} | {share} |")
    print()


def main() -> None:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## NLU: intent classifier training time and held-out accuracy\n")
    print(
        f"Command: `python -m bench.nlu` · machine: {platform.machine()}, "
        f"nproc {os.cpu_count()} · {started}\n"
    )
    intents = load_flow_intents(ROOT / "flows" / "hotline.yaml")
    hotline = intents.examples()
    heard = {i: t for i, t in read_heard(ROOT / "flows" / "hotline.yaml").items() if i in hotline}
    n_phrases = sum(len(v) for v in hotline.values())
    rows = []
    (med, worst, clf), (hmed, hworst, _), (smed, sworst, _) = timed_train([(hotline, {}), (hotline, heard),
                                                                            (synthetic(), {})])
    rows.append(
        f"| hotline.yaml ({len(hotline)} intents, {n_phrases} phrases, cmn+en) "
        f"| {med * 1000:.0f} | {worst * 1000:.0f} |"
    )
    rows.append(f"| hotline.yaml + hotline.heard.whisper.tsv ({sum(map(len, heard.values()))} heard lines, "
                f"as the engine loads it) | {hmed * 1000:.0f} | {hworst * 1000:.0f} |")
    rows.append(f"| synthetic 10 intents x 30 phrases | {smed * 1000:.0f} | {sworst * 1000:.0f} |")
    print(f"Training time over {REPS} runs (ms):\n")
    print("| training set | median | max |\n|---|---|---|")
    print("\n".join(rows))
    texts = [u for u, _ in read_eval_tsv(ROOT / "tests" / "data" / "nlu" / "eval_cmn.tsv")]
    texts += [u for u, _ in read_eval_tsv(ROOT / "tests" / "data" / "nlu" / "eval_en.tsv")]
    per = []
    for _ in range(5):
        for t in texts:
            t0 = time.perf_counter()
            clf.classify(t)
            per.append(time.perf_counter() - t0)
    per.sort()
    p50, p95 = per[len(per) // 2], per[int(len(per) * 0.95)]
    print(f"\nClassify ({len(per)} calls, cmn+en): p50 {p50 * 1e6:.0f} µs, p95 {p95 * 1e6:.0f} µs per utterance.")
    decision = decision_times(clf, texts)
    print(
        f"Decision of one ask node over a 5-hypothesis n-best (`classify_speech`): p50 {decision[0] * 1e3:.2f} ms, "
        f"p95 {decision[1] * 1e3:.2f} ms; 10 callers' decisions due at the same instant (one core, in turn): "
        f"the last is done {decision[2] * 1e3:.1f} ms after the first starts.\n"
    )
    cv_right, cv_total = cross_validation(hotline)
    print(f"5-fold cross-validation on hotline.yaml's own phrases (top-1): {cv_right / cv_total:.3f} "
          f"({cv_right}/{cv_total}).\n")
    calibration_report(clf)
    print("Held-out accuracy (classifier trained on all of hotline.yaml's phrases, every language):\n")
    print("| eval set | accuracy | mean confidence right / wrong |\n|---|---|---|")
    for name in ("eval_cmn.tsv", "eval_en.tsv"):
        report = evaluate(clf, read_eval_tsv(ROOT / "tests" / "data" / "nlu" / name))
        print(
            f"| {name} | {report.accuracy:.3f} ({report.correct}/{report.total}) | "
            f"{report.mean_confidence_right:.2f} / {report.mean_confidence_wrong:.2f} |"
        )
    # How the flow's thresholds would act on the held-out set.
    rows_all = read_eval_tsv(ROOT / "tests" / "data" / "nlu" / "eval_cmn.tsv") + read_eval_tsv(
        ROOT / "tests" / "data" / "nlu" / "eval_en.tsv"
    )
    acted = [(clf.classify(u)[0], e) for u, e in rows_all]
    confident = [(s, e) for s, e in acted if s.confidence >= 0.6]
    right = sum(1 for s, e in confident if s.intent == e)
    print(
        f"\nAt confidence >= 0.6 (the flow acts without confirming): "
        f"{len(confident)}/{len(acted)} utterances, "
        f"{right}/{len(confident)} of them right ({right / max(1, len(confident)):.3f})."
    )


if __name__ == "__main__":
    main()
