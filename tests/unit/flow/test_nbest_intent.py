"""ASR doubt that does not change the need must not lower the intent's confidence."""

from __future__ import annotations

import pytest

from ivr.call import Hypothesis, SpeechInput
from ivr.flow.model import AskNode, AskRetry
from ivr.flow.nodes.menus import (
    _intent_posterior,
    answer_intent,
    answer_phrases,
    classify_answer,
    retry_thresholds,
)
from ivr.speech import IntentClassifier

EXAMPLES = {
    "claim": ["file a claim", "I want to make a claim", "claim for my hospital bill", "report a claim"],
    "payment": ["pay my premium", "make a payment", "pay the bill for my policy", "premium payment"],
}


class _Node:
    intents = {"claim": "c", "payment": "p"}


def _speech(*texts_and_weights: tuple[str, float]) -> SpeechInput:
    nbest = tuple(Hypothesis(t, w) for t, w in texts_and_weights)
    return SpeechInput(nbest[0].text, nbest[0].confidence, "en", nbest=nbest)


def test_alternatives_that_agree_keep_the_intent_confident() -> None:
    classifier = IntentClassifier.train(EXAMPLES)
    single = classifier.classify("on to file a claim")[0]
    agreeing = _speech(("on to file a claim", 0.4), ("i want to file a claim", 0.3), ("want to file a claim", 0.3))
    totals = _intent_posterior(classifier, agreeing, _Node())  # type: ignore[arg-type]
    assert max(totals, key=totals.__getitem__) == "claim"
    assert totals["claim"] > 0.4 * single.confidence  # not scaled down by how the words split among them
    assert abs(totals["claim"] - single.confidence) < 0.25


def test_scores_that_are_not_probabilities_are_shares_and_probabilities_keep_their_doubt() -> None:
    classifier = IntentClassifier.train(EXAMPLES)
    texts = ("file a claim", "file a claim please")
    counted = _intent_posterior(classifier, _speech(*((t, 0.6) for t in texts)), _Node())  # type: ignore[arg-type]
    sure = _intent_posterior(classifier, _speech(*((t, 0.5) for t in texts)), _Node())  # type: ignore[arg-type]
    doubted = _intent_posterior(classifier, _speech(*((t, 0.25) for t in texts)), _Node())  # type: ignore[arg-type]
    assert counted["claim"] == pytest.approx(sure["claim"])  # summing past 1 (agreement counts): shares
    assert doubted["claim"] == pytest.approx(0.5 * sure["claim"])  # probabilities summing to 0.5: half


def test_alternatives_that_disagree_lower_the_confidence() -> None:
    classifier = IntentClassifier.train(EXAMPLES)
    agreeing = _speech(("file a claim", 0.5), ("file a claim please", 0.5))
    split = _speech(("file a claim", 0.5), ("pay my premium", 0.5))
    agree = _intent_posterior(classifier, agreeing, _Node())  # type: ignore[arg-type]
    disagree = _intent_posterior(classifier, split, _Node())  # type: ignore[arg-type]
    assert disagree["claim"] < agree["claim"] - 0.2


def test_readings_that_each_garble_another_word_are_surer_together(monkeypatch: pytest.MonkeyPatch) -> None:
    import ivr.flow.nodes.menus as menus

    classifier = IntentClassifier.train({
        "surrender": ["cancel my policy", "I want to cancel my insurance", "surrender my policy", "end my policy"],
        "payment": ["pay my premium", "make a payment", "my premium is due", "the payment bounced"],
    })

    class Node:
        intents = {"surrender": "s", "payment": "p"}

    heard = _speech(("i want to council my polity", 0.5), ("i want to cancel my pollen", 0.3))
    together = _intent_posterior(classifier, heard, Node())  # type: ignore[arg-type]
    monkeypatch.setattr(menus, "_TOGETHER", 0.0)
    apart = _intent_posterior(classifier, heard, Node())  # type: ignore[arg-type]
    assert max(together, key=together.__getitem__) == "surrender"
    assert together["surrender"] > apart["surrender"] + 0.05  # "cancel" in one reading, "policy" only in the other
    assert together["surrender"] <= 0.8  # still no surer than the recognizer (0.5 + 0.3 of its mass)


def test_without_alternatives_the_recognizer_confidence_scales_the_classifier() -> None:
    classifier = IntentClassifier.train(EXAMPLES)
    plain = classifier.classify("file a claim")[0].confidence
    doubtful = SpeechInput("file a claim", 0.5, "en")
    assert abs(_intent_posterior(classifier, doubtful, _Node())["claim"] - 0.5 * plain) < 1e-9  # type: ignore[arg-type]


def test_speech_heard_but_not_recognized_records_no_intent() -> None:
    import pathlib

    from ivr.flow import load_flow
    from ivr.flow.nodes.menus import _classify

    flow = load_flow(pathlib.Path(__file__).resolve().parents[3] / "flows" / "hotline.yaml")
    need = flow.node("need")

    class _Rt:
        pass

    rt = _Rt()
    rt.flow = flow  # type: ignore[attr-defined]
    assert _classify(need, rt, SpeechInput("", 0.0, "en")) == (None, 0.0, "none")  # type: ignore[arg-type]


def _asked_again() -> AskNode:
    return AskNode(id="need", prompt="ask", intents={"claim": "c", "payment": "p", "loan": "l"},
                   no_match=AskRetry(answers={"claim": {"en": ("claim",), "cmn": ("理赔",)},
                                              "payment": {"en": ("payment",)}, "loan": {"en": ("loan",)}}))


def test_an_answer_the_retry_named_decides_with_the_recognizers_agreement() -> None:
    node = _asked_again()
    assert answer_phrases(node, ("en",)) == ("claim", "payment", "loan")
    assert answer_phrases(node, ("cmn", "en")) == ("理赔", "claim", "payment", "loan")
    sure = answer_intent(node, _speech(("payment", 0.6), ("payment i", 0.3)))
    split = answer_intent(node, _speech(("payment", 0.45), ("loan", 0.45)))
    assert sure[0] == split[0] == "payment"
    assert sure[1] == pytest.approx(0.9) and split[1] == pytest.approx(0.45)
    assert answer_intent(node, _speech(("i want to make a payment", 0.8),))[0] == "payment"
    assert answer_intent(node, _speech(("no payment", 0.9),)) == (None, 0.0)  # taken back
    assert answer_intent(node, _speech(("hello hello", 0.9),)) == (None, 0.0)


def test_speech_asked_again_without_a_named_answer_is_no_match() -> None:
    """The retry turn's recognizer searched the answers alone: its other words are filler, not a need."""
    node = _asked_again()
    assert classify_answer(node, SpeechInput("i want", 0.9, "en")) == (None, 0.0, "answer")
    assert classify_answer(node, SpeechInput("claim", 0.9, "en")) == ("claim", 0.9, "answer")


def test_answers_narrow_the_search_only_when_every_listening_language_has_them() -> None:
    node = _asked_again()
    assert answer_phrases(node, ("yue", "en")) == ()  # a yue recognizer would know none of the words
    assert retry_thresholds(node) == node.thresholds
