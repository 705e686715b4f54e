"""Voice of the customer: what callers' own words (voice messages, detractors' survey comments) are about,
grouped two ways.

* **Need**: the flow's own intent classifier reads each text (the same one that routes calls), so the
  figures speak the hotline's language (claim, payment, complaint...). Below `min_confidence` a text is
  `unclassified` rather than forced into a need.
* **Theme**: keyword clustering, zh + en, with no model: English words (stop words dropped) and Chinese
  character bigrams (no segmenter: callers' homophone slips break words, not bigrams). A term becomes a
  theme when it is in at least `min_support` texts (and, from `GENERAL_AFTER` texts on, in no more than
  `max_share` of them: such a term is the trade's vocabulary, not a theme); themes are taken greedily by how
  many texts they cover, each text joining the first theme it contains, so every text is counted once (the
  rest: `other`).

Pure: texts in, figures out; `ivr report` and `GET /api/messages/themes` feed it from the store.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ivr.flow.intents import Classifier

__all__ = ["Comment", "Theme", "VoiceOfCustomer", "analyse", "terms"]

Classify = Callable[[str], tuple[str, float]]
"""text → (best intent, confidence 0..1)."""

UNCLASSIFIED = "unclassified"
OTHER = "other"
MAX_EXAMPLES = 3
GENERAL_AFTER = 10
"""From this many texts on, a term in more than `max_share` of them is too general to be a theme."""
MAX_TEXTS = 5000
"""The most texts one analysis reads (the newest); bounded like every other report."""

_WORD = re.compile(r"[a-z][a-z']{2,}")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_EN_STOP = frozenset(
    "the and you your our for are was were with this that have has had not but can could would should will "
    "please hello thank thanks want like just about from they them then there what when where which who why "
    "how all any been being did does doing its it's i'm i've i'd me my mine myself we us our ours yes okay "
    "call calling back today tomorrow yesterday also very really some more much".split()
)
_ZH_STOP_CHARS = frozenset("我你他她它的了是在有和就不也都要吗呢吧啊呀哦嗯请您们这那个一下么给")


@dataclass(slots=True, frozen=True)
class Comment:
    """One text a caller left."""

    text: str
    day: date
    queue: str = ""
    source: str = "message"


@dataclass(slots=True, frozen=True)
class Theme:
    term: str
    count: int
    needs: dict[str, int]
    """How the theme's texts split by need."""
    examples: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class VoiceOfCustomer:
    total: int
    by_need: dict[str, int]
    by_day: dict[str, int]
    """ISO day → texts."""
    by_queue: dict[str, int]
    by_source: dict[str, int]
    """`message` (voice messages) and `survey` (detractors' comments)."""
    themes: tuple[Theme, ...]
    other: int
    """Texts in no theme."""
    needs_by_day: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total, "by_need": self.by_need, "by_day": self.by_day, "by_queue": self.by_queue,
            "by_source": self.by_source,
            "needs_by_day": self.needs_by_day, "other": self.other,
            "themes": [{"term": t.term, "count": t.count, "needs": t.needs, "examples": list(t.examples)}
                       for t in self.themes],
        }


def terms(text: str) -> set[str]:
    """The text's theme candidates: English content words and Chinese character bigrams."""
    lowered = text.lower()
    found = {w.strip("'") for w in _WORD.findall(lowered) if w not in _EN_STOP}
    for run in _HAN_RUN.findall(text):
        for a, b in zip(run, run[1:], strict=False):
            if a not in _ZH_STOP_CHARS and b not in _ZH_STOP_CHARS:
                found.add(a + b)
    return {t for t in found if t}


def _need(classify: Classify | None, text: str, min_confidence: float) -> str:
    if classify is None or not text.strip():
        return UNCLASSIFIED
    intent, confidence = classify(text)
    return intent if intent and confidence >= min_confidence else UNCLASSIFIED


def analyse(
    comments: Iterable[Comment],
    classify: Classify | None = None,
    *,
    top: int = 8,
    min_support: int = 2,
    min_confidence: float = 0.35,
    max_share: float = 0.5,
) -> VoiceOfCustomer:
    """Group `comments` by need and by theme (see the module docstring); at most `MAX_TEXTS` are read."""
    items: list[Comment] = []
    for comment in comments:
        if comment.text.strip():
            items.append(comment)
        if len(items) >= MAX_TEXTS:
            break
    needs = [_need(classify, c.text, min_confidence) for c in items]
    by_day: Counter[str] = Counter(c.day.isoformat() for c in items)
    needs_by_day: dict[str, Counter[str]] = {}
    for comment, need in zip(items, needs, strict=True):
        needs_by_day.setdefault(comment.day.isoformat(), Counter())[need] += 1
    bags = [terms(c.text) for c in items]
    support: Counter[str] = Counter(t for bag in bags for t in bag)
    unassigned = set(range(len(items)))
    themes: list[Theme] = []
    too_common = max_share * len(items) if len(items) >= GENERAL_AFTER else float("inf")
    for term, count in sorted(support.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0])):
        if len(themes) >= top or not unassigned:
            break
        if count > too_common:  # in most texts: a word of the trade ("policy", "保险"), not a theme
            continue
        members = sorted(i for i in unassigned if term in bags[i])
        if len(members) < min_support:
            continue
        unassigned -= set(members)
        themes.append(Theme(
            term, len(members), dict(Counter(needs[i] for i in members).most_common()),
            tuple(items[i].text for i in members[:MAX_EXAMPLES]),
        ))
    return VoiceOfCustomer(
        total=len(items),
        by_need=dict(Counter(needs).most_common()),
        by_day=dict(sorted(by_day.items())),
        by_queue=dict(Counter(c.queue for c in items).most_common()),
        by_source=dict(Counter(c.source for c in items).most_common()),
        themes=tuple(themes),
        other=len(unassigned),
        needs_by_day={day: dict(c.most_common()) for day, c in sorted(needs_by_day.items())},
    )


def best_intent(classifiers: Sequence[Classifier]) -> Classify:
    """One `Classify` over several flows' classifiers: the most confident intent any of them gives."""

    def classify(text: str) -> tuple[str, float]:
        best = ("", 0.0)
        for classifier in classifiers:
            scored = classifier.classify(text)
            if scored and scored[0].confidence > best[1]:
                best = (scored[0].intent, float(scored[0].confidence))
        return best

    return classify
