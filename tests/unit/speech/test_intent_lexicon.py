"""Callers' own words for a service: synonym concepts, sound-matching pitfalls, and more self-corrections."""

from __future__ import annotations

import pytest

from ivr.speech import IntentClassifier
from ivr.speech.concepts import concepts_in
from ivr.speech.intent import after_correction

EXAMPLES = {
    "policy_change": ["change my address", "update my phone number", "修改地址", "改手机号", "变更受益人"],
    "payment": ["pay my premium", "my payment failed", "交保费", "续期缴费", "保费扣款失败"],
    "agent": ["agent", "operator", "I want to talk to a human", "转人工", "我要找真人"],
    "claim": ["file a claim", "claim for my hospital bills", "我要理赔", "医疗费用怎么报销", "住院了想理赔"],
    "loan": ["policy loan", "borrow against my policy", "保单借款", "我想用保单贷款", "借款利息多少"],
}


@pytest.fixture(scope="module")
def clf() -> IntentClassifier:
    return IntentClassifier.train(EXAMPLES)


@pytest.mark.parametrize(
    ("text", "concept"),
    [
        ("I'd like to amend the records", "change"),
        ("保单上的信息要更正", "change"),
        ("can I set up a standing order", "pay"),
        ("我想支付这一期", "pay"),
        ("may I have a word with a representative", "person"),
        ("让工作人员来", "person"),
        ("will you compensate me for the physio", "reimburse"),
        ("药费能不能报", "reimburse"),
    ],
)
def test_other_words_for_a_service_name_its_concept(text: str, concept: str) -> None:
    assert concept in concepts_in(text)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I'd like to amend the records", "policy_change"),  # no word of the policy_change phrases
        ("can I set up a standing order", "payment"),
        ("may I have a word with a representative", "agent"),
        ("will you compensate me for the physio", "claim"),
    ],
)
def test_a_synonym_reaches_the_service_its_concept_leans_to(clf: IntentClassifier, text: str, intent: str) -> None:
    assert clf.classify(text)[0].intent == intent


@pytest.mark.parametrize(
    ("text", "not_concept"),
    [
        ("让客服接电话", "cash_need"),  # 接电(话) sounds like 借点: the cue is 借点钱, three syllables
        ("续期的钱在哪里交", "cash_need"),  # 钱在 sounds like 欠债: no such two-syllable cue
        ("按了半天键也没用", "leave"),  # 没用 (it does not work) is no wish to leave
    ],
)
def test_a_cue_does_not_fire_on_a_sound_alike_or_an_everyday_phrase(text: str, not_concept: str) -> None:
    assert not_concept not in concepts_in(text)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("I want to pay no cancel it", " cancel it"),
        ("check my policy, hang on, I want to pay", ", I want to pay"),
        ("I said claim but I meant a loan", " a loan"),
        ("我要交费，等一下，我要借款", "，我要借款"),
        ("我要退保，我的意思是借款", "借款"),
        ("there is no claim on it yet", "there is no claim on it yet"),  # "no claim" names no new need
        ("我要退保，不对", "我要退保，不对"),  # nothing said after the marker
    ],
)
def test_more_ways_of_correcting_oneself(text: str, meant: str) -> None:
    assert after_correction(text) == meant
