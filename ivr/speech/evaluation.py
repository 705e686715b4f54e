"""Scoring an intent classifier on a held-out TSV (`utterance<TAB>intent`), for `ivr nlu --eval`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.speech.errors import IntentSourceError
from ivr.speech.intent import IntentClassifier

__all__ = ["EvalReport", "evaluate", "read_eval_rows", "read_eval_tsv"]


@dataclass(slots=True, frozen=True)
class EvalReport:
    total: int
    correct: int
    per_intent: tuple[tuple[str, float, float, int], ...]
    """(intent, precision, recall, support), in the classifier's intent order."""
    confusions: tuple[tuple[str, str, int], ...]
    """(expected, predicted, count), most frequent first."""
    errors: tuple[tuple[str, str, str, float], ...]
    """(utterance, expected, predicted, confidence) of every miss."""
    mean_confidence_right: float
    mean_confidence_wrong: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def lines(self, *, show_errors: bool = True) -> list[str]:
        """The human report; its last line is exactly `accuracy: 0.xxx (n/N)`."""
        out = [f"{'intent':<16} {'precision':>9} {'recall':>7} {'n':>4}"]
        out += [f"{i:<16} {p:>9.3f} {r:>7.3f} {n:>4}" for i, p, r, n in self.per_intent]
        out.append("confusions (expected -> predicted):" if self.confusions else "confusions: none")
        out += [f"  {e} -> {p}: {n}" for e, p, n in self.confusions]
        if show_errors and self.errors:
            out.append("misses:")
            out += [f"  [{e} -> {p} {c:.2f}] {u}" for u, e, p, c in self.errors]
        out.append(
            f"mean confidence: right {self.mean_confidence_right:.3f}, wrong {self.mean_confidence_wrong:.3f}"
        )
        out.append(f"accuracy: {self.accuracy:.3f} ({self.correct}/{self.total})")
        return out


def read_eval_tsv(path: Path | str) -> list[tuple[str, str]]:
    """Rows of `utterance<TAB>intent`; a header row `utterance<TAB>intent` is skipped."""
    return [(u, i) for u, i, _ in read_eval_rows(path)]


def read_eval_rows(path: Path | str) -> list[tuple[str, str, str]]:
    """Rows of `utterance<TAB>intent[<TAB>kind]` (kind "" when absent); a header row is skipped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise IntentSourceError(f"{p}: cannot read evaluation file: {exc.strerror}") from exc
    rows: list[tuple[str, str, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3):
            raise IntentSourceError(
                f"{p}:{n}: expected `utterance<TAB>intent[<TAB>kind]`, got {len(parts)} column(s)"
            )
        if n == 1 and parts[:2] == ["utterance", "intent"]:
            continue
        rows.append((parts[0].strip(), parts[1].strip(), parts[2].strip() if len(parts) == 3 else ""))
    return rows


def evaluate(classifier: IntentClassifier, rows: Sequence[tuple[str, str]]) -> EvalReport:
    unknown = sorted({e for _, e in rows} - set(classifier.intents))
    if unknown:
        raise IntentSourceError(f"evaluation set names intents the flow does not have: {', '.join(unknown)}")
    predicted: list[tuple[str, str, str, float]] = []
    for utterance, expected in rows:
        best = classifier.classify(utterance)[0]
        predicted.append((utterance, expected, best.intent, best.confidence))
    correct = sum(1 for _, e, p, _ in predicted if e == p)
    per_intent = []
    for intent in classifier.intents:
        tp = sum(1 for _, e, p, _ in predicted if e == p == intent)
        said = sum(1 for _, _, p, _ in predicted if p == intent)
        support = sum(1 for _, e, _, _ in predicted if e == intent)
        if support or said:
            per_intent.append((intent, tp / said if said else 0.0, tp / support if support else 0.0, support))
    pairs = Counter((e, p) for _, e, p, _ in predicted if e != p)
    right = [c for _, e, p, c in predicted if e == p]
    wrong = [c for _, e, p, c in predicted if e != p]
    return EvalReport(
        total=len(rows),
        correct=correct,
        per_intent=tuple(per_intent),
        confusions=tuple((e, p, n) for (e, p), n in pairs.most_common()),
        errors=tuple(x for x in predicted if x[1] != x[2]),
        mean_confidence_right=sum(right) / len(right) if right else 0.0,
        mean_confidence_wrong=sum(wrong) / len(wrong) if wrong else 0.0,
    )
