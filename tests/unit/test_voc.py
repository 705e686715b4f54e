"""Voice of the customer: message transcripts grouped by need (a classifier) and theme (zh + en keywords)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console

from ivr.report import report_main
from ivr.store import SqliteStore
from ivr.store.messages import MessageStore, NewMessage
from ivr.voc import OTHER, UNCLASSIFIED, Comment, analyse, terms

D1, D2 = date(2026, 12, 5), date(2026, 12, 6)
TEXTS = [
    ("我的车被撞了想报案理赔", D1, "claims"),
    ("理赔款什么时候到账", D1, "claims"),
    ("I want to check my claim status", D1, "general"),
    ("my claim payment is late", D2, "general"),
    ("保费扣款失败了怎么办", D2, "service"),
    ("扣款失败请回电", D2, "service"),
    ("业务员骗我买保险我要投诉", D2, "complaints"),
    ("", D2, "general"),
]


def keyword_classifier(text: str) -> tuple[str, float]:
    rules = ((("理赔", "claim", "报案"), "claim"), (("扣款", "保费"), "payment"), (("投诉",), "complaint"))
    for words, intent in rules:
        if any(w in text.lower() for w in words):
            return intent, 0.9
    return "agent", 0.1


def comments() -> list[Comment]:
    return [Comment(text, day, queue) for text, day, queue in TEXTS]


def test_terms_are_english_content_words_and_chinese_bigrams() -> None:
    assert terms("Please call me back about my CLAIM") == {"claim"}
    assert terms("扣款失败了") == {"扣款", "款失", "失败"}  # 了 is a particle, no bigram with it
    assert terms("我的") == set()


def test_needs_come_from_the_classifier_and_doubt_is_unclassified() -> None:
    voc = analyse(comments(), keyword_classifier)
    assert voc.total == 7, "an empty transcript says nothing"
    assert voc.by_need == {"claim": 4, "payment": 2, "complaint": 1}
    assert analyse([Comment("hello there", D1)], keyword_classifier).by_need == {UNCLASSIFIED: 1}
    assert analyse(comments()).by_need == {UNCLASSIFIED: 7}


def test_themes_cluster_each_text_once_with_examples() -> None:
    voc = analyse(comments(), keyword_classifier)
    by_term = {t.term: t for t in voc.themes}
    assert by_term["claim"].count == 2 and by_term["claim"].needs == {"claim": 2}
    assert by_term["理赔"].count == 2 and "我的车被撞了想报案理赔" in by_term["理赔"].examples
    assert {"扣款", "失败"} & set(by_term), "the failed-deduction texts form a theme"
    assert sum(t.count for t in voc.themes) + voc.other == voc.total
    assert voc.other == 1  # the complaint stands alone
    assert OTHER not in by_term


def test_counts_per_day_and_queue() -> None:
    voc = analyse(comments(), keyword_classifier)
    assert voc.by_day == {"2026-12-05": 3, "2026-12-06": 4}
    assert voc.by_queue == {"claims": 2, "general": 2, "service": 2, "complaints": 1}
    assert voc.needs_by_day["2026-12-06"] == {"claim": 1, "payment": 2, "complaint": 1}
    assert voc.to_json()["themes"][0]["examples"]
    assert voc.by_source == {"message": 7}
    mixed = analyse([*comments(), Comment("等太久了", D2, "general", "survey")], keyword_classifier)
    assert mixed.by_source == {"message": 7, "survey": 1}


def test_top_bounds_the_themes() -> None:
    fruit = ["apple", "banana", "cherry", "damson", "elderberry", "figs", "grape"]
    many = [Comment(f"{name} order", D1) for name in fruit for _ in range(3)]
    voc = analyse(many, top=5)
    assert len(voc.themes) == 5 and all(t.count == 3 for t in voc.themes)
    assert "order" not in {t.term for t in voc.themes}, "a word in every text is no theme"


def test_ivr_report_shows_the_voice_of_the_customer(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = SqliteStore(tmp_path / "ivr.db")
    messages = MessageStore(store, tmp_path / "messages")
    at = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
    for text, _day, queue in TEXTS:
        messages.add(NewMessage("c", "13800138000", queue, "cmn", at, np.zeros(800, dtype=np.int16), "silence", text))
    store.close()
    out = Console(record=True, width=200)
    code = report_main("2026-12-05", "2026-12-07", str(tmp_path / "ivr.db"), now=at, console=out,
                       messages_dir=tmp_path / "messages", classify=lambda: keyword_classifier)
    text = out.export_text()
    assert code == 0
    assert "Voice of the customer: top themes of 7 messages" in text
    assert "Messages by need" in text and "payment" in text and "理赔" in text
