"""NLU benchmark: intent classifier training time, classify latency, and held-out accuracy.

Training runs at every flow (re)load, so it must stay instant: measured on the hotline flow's own
phrases and on a synthetic 10 intents x 30 phrases set. Accuracy is on the held-out caller
phrasings in tests/data/nlu (written before the training phrases were seen; never trained on).
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


def timed_train(examples: dict[str, list[str]]) -> tuple[float, float, IntentClassifier]:
    IntentClassifier.train(examples)  # warm imports
    times = []
    clf = None
    for _ in range(REPS):
        t0 = time.perf_counter()
        clf = IntentClassifier.train(examples)
        times.append(time.perf_counter() - t0)
    assert clf is not None
    return statistics.median(times), max(times), clf


def main() -> None:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## NLU: intent classifier training time and held-out accuracy\n")
    print(
        f"Command: `python -m bench.nlu` · machine: {platform.machine()}, "
        f"nproc {os.cpu_count()} · {started}\n"
    )
    intents = load_flow_intents(ROOT / "flows" / "hotline.yaml")
    hotline = intents.examples()
    n_phrases = sum(len(v) for v in hotline.values())
    rows = []
    med, worst, clf = timed_train(hotline)
    rows.append(
        f"| hotline.yaml ({len(hotline)} intents, {n_phrases} phrases, cmn+en) "
        f"| {med * 1000:.0f} | {worst * 1000:.0f} |"
    )
    smed, sworst, _ = timed_train(synthetic())
    rows.append(f"| synthetic 10 intents x 30 phrases | {smed * 1000:.0f} | {sworst * 1000:.0f} |")
    print(f"Training time over {REPS} runs (ms):\n")
    print("| training set | median | max |\n|---|---|---|")
    print("\n".join(rows))
    texts = [u for u, _ in read_eval_tsv(ROOT / "tests" / "data" / "nlu" / "eval_cmn.tsv")]
    t0 = time.perf_counter()
    for t in texts:
        clf.classify(t)
    per = (time.perf_counter() - t0) / len(texts)
    print(f"\nClassify: {per * 1e6:.0f} µs per utterance.\n")
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
