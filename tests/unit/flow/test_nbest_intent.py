"""ASR doubt that does not change the need must not lower the intent's confidence."""

from __future__ import annotations

import pytest

from ivr.call import Hypothesis, SpeechInput
from ivr.flow.nodes.menus import _intent_posterior
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
