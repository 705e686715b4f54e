from __future__ import annotations

import pytest

import ivr.speech.intent as intent_module
from ivr.speech import IntentClassifier, IntentScore, IntentTrainingError
from ivr.speech.intent import _dropped, after_correction, normalize_utterance

EXAMPLES = {
    "claim": [
        "我要理赔",
        "申请理赔",
        "住院了想报销医药费",
        "出险了要报案",
        "I want to file a claim",
        "make a claim",
    ],
    "payment": ["交保费", "续期缴费", "保费扣款失败", "怎么交钱", "pay my premium", "my payment failed"],
    "agent": ["转人工", "人工服务", "我要找客服", "找真人说话", "talk to an agent", "a real person please"],
}


@pytest.fixture(scope="module")
def clf() -> IntentClassifier:
    return IntentClassifier.train(EXAMPLES)


def test_intents_in_training_order(clf: IntentClassifier) -> None:
    assert clf.intents == ("claim", "payment", "agent")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("嗯 那个 我想申请一下理赔", "claim"),
        ("您好请问理赔怎么申请", "claim"),
        ("我想里赔", "claim"),  # ASR homophone
        ("麻烦帮我转一下人工", "agent"),
        ("就是那个保费扣款失败了", "payment"),
        ("um hello I'd like to file a claim please", "claim"),
        ("uh can I talk to an agent", "agent"),
        ("pay premium", "payment"),
    ],
    ids=[
        "filler-cmn",
        "polite-cmn",
        "homophone",
        "agent-cmn",
        "payment-cmn",
        "filler-en",
        "agent-en",
        "terse-en",
    ],
)
def test_classifies_padded_and_misrecognized_phrasings(clf: IntentClassifier, text: str, intent: str) -> None:
    scores = clf.classify(text)
    assert scores[0].intent == intent
    assert scores[0].confidence > scores[1].confidence


def test_scores_are_ranked_calibrated_and_cover_every_intent(clf: IntentClassifier) -> None:
    scores = clf.classify("我要理赔")
    assert [s.intent for s in scores][0] == "claim"
    assert sorted(s.intent for s in scores) == sorted(EXAMPLES)
    assert all(isinstance(s, IntentScore) and 0.0 <= s.confidence <= 1.0 for s in scores)
    assert [s.confidence for s in scores] == sorted((s.confidence for s in scores), reverse=True)
    assert sum(s.confidence for s in scores) <= 1.0 + 1e-6
    assert scores[0].confidence >= 0.6, "a training phrase said verbatim must be confident enough to act on"


@pytest.mark.parametrize(
    "text",
    [
        "今天天气怎么样",
        "asdkjh qwpoeiru zxmcnv",
        "帮我订一张去上海的机票",
        "what's the capital of France",
        "嗯嗯嗯",
    ],
)
def test_out_of_domain_gets_low_confidence(clf: IntentClassifier, text: str) -> None:
    assert clf.classify(text)[0].confidence < 0.4


def test_empty_or_filler_only_text_has_zero_confidence(clf: IntentClassifier) -> None:
    for text in ["", "   ", "嗯 那个", "um uh"]:
        assert all(s.confidence == 0.0 for s in clf.classify(text)), text


def test_keywords_pull_an_utterance_toward_their_intent() -> None:
    plain = IntentClassifier.train(EXAMPLES)
    keyed = IntentClassifier.train(EXAMPLES, keywords={"agent": ["坐席"]})
    assert keyed.classify("接坐席")[0].intent == "agent"
    assert keyed.classify("接坐席")[0].confidence > plain.classify("接坐席")[0].confidence


def test_normalize_strips_padding_but_keeps_content() -> None:
    assert normalize_utterance("您好，嗯，那个，请问理赔怎么办？") == "理赔怎么办"
    assert normalize_utterance("Um, hello, I'd like to FILE a claim please!") == "file claim"


def test_a_recognizer_slip_it_was_trained_on_reads_as_its_intent() -> None:
    plain = IntentClassifier.train(EXAMPLES)
    heard = IntentClassifier.train(EXAMPLES, heard={"claim": ["fall a clam"]})
    assert heard.classify("fall a clam")[0].intent == "claim"
    assert heard.classify("fall a clam")[0].confidence > plain.classify("fall a clam")[0].confidence


def test_heard_examples_weigh_less_than_the_phrases() -> None:
    """Two heard lines that happen to read as another intent's phrase ("make a claim" heard for a payment
    phrase) must not outvote that phrase: at the weight of a phrase they did, and typed text went wrong."""
    clf = IntentClassifier.train(EXAMPLES, heard={"payment": ["make a claim", "make a claim"]})
    assert clf.classify("make a claim")[0].intent == "claim"


def test_heard_examples_of_an_unknown_intent_are_refused() -> None:
    with pytest.raises(IntentTrainingError, match="heard examples given for unknown intents"):
        IntentClassifier.train(EXAMPLES, heard={"loan": ["take a loan"]})


@pytest.mark.parametrize(
    ("examples", "keywords", "message"),
    [
        ({}, None, "no intents"),
        ({"claim": ["嗯", "  "]}, None, "'claim' has no usable training phrase"),
        ({"claim": ["理赔"]}, {"loan": ["借款"]}, "unknown intents: ['loan']"),
    ],
    ids=["empty", "only-fillers", "keyword-unknown-intent"],
)
def test_bad_training_input_names_the_problem(
    examples: dict[str, list[str]], keywords: dict[str, list[str]] | None, message: str
) -> None:
    with pytest.raises(IntentTrainingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        IntentClassifier.train(examples, keywords=keywords)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("I want to check my policy no wait I want to make a claim", " I want to make a claim"),
        ("我想查保单，不对，我是要理赔", "，我是要理赔"),
        ("交保费，哦不是，我要报销医药费", "，我要报销医药费"),
        ("我要改保单，不是，我要退保", "，我要退保"),
        ("I no longer want the policy", "I no longer want the policy"),
        ("I want to cancel no I want to pay", " I want to pay"),
        ("I have no idea what my plan covers", "I have no idea what my plan covers"),
        ("保单是不是失效了", "保单是不是失效了"),
        ("claim no wait no", "claim no wait no"),
        # the markers as a recognizer writes them
        ("I want to surrender no weight I just want to see what it is worth", " I just want to see what it is worth"),
        ("I want to pay no actual borrow against it", " borrow against it"),
        ("I want to update my address more accurately I need to report a death", " I need to report a death"),
        ("I moved house and now I want to change my address", "I moved house and now I want to change my address"),
    ],
)
def test_after_correction_keeps_what_the_caller_settled_on(text: str, meant: str) -> None:
    assert after_correction(text) == meant


def test_a_self_correction_is_classified_by_its_last_need(clf: IntentClassifier) -> None:
    assert clf.classify("我要查保单，不对，我要报案")[0].intent == clf.classify("我要报案")[0].intent


def test_chinese_homophones_of_a_phrase_stay_close_to_it() -> None:
    clf = IntentClassifier.train({"claim": ["我要理赔", "申请理赔"], "surrender": ["我要退保", "怎么退保"]})
    assert clf.classify("我要里赔")[0].intent == "claim"
    assert clf.classify("怎么腿保")[0].intent == "surrender"


def test_a_phrase_is_also_learnt_with_each_word_that_means_something_left_out() -> None:
    shortened = ["i to cancel my policy", "i want to my policy", "i want to cancel my"]
    assert _dropped("I want to cancel my policy") == shortened
    # a refusal keeps its negation; padding alone is never what is left out; one word, or Chinese, gives nothing
    refusal = _dropped("I don't want to cancel it")
    assert refusal == ["i don't to cancel it", "i don't want to it"]
    assert _dropped("policy loan") == ["loan", "policy"]
    assert _dropped("agent please") == [] and _dropped("我要退保") == []


def test_a_need_with_one_word_misheard_is_still_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = {
        "loan": ["I want to borrow against my policy", "take a loan on my policy", "how much can I borrow"],
        "surrender": ["cancel my policy", "I want to cancel my insurance", "surrender my policy", "end my policy"],
        "payment": ["pay my premium", "make a payment", "my premium is due", "the payment bounced"],
    }
    misheard = {"i want to council my insurance": "surrender", "take alone on my policy": "loan",
                "how much can i bow": "loan"}
    trained = IntentClassifier.train(examples)
    monkeypatch.setattr(intent_module, "_dropped", lambda phrase: [])
    phrases_only = IntentClassifier.train(examples)
    for text, intent in misheard.items():
        best, before = trained.classify(text)[0], phrases_only.classify(text)[0]
        assert best.intent == intent, text
        # the words left carry the need: confident enough to be asked "did you want ...?" (the hotline: from 0.2)
        assert best.confidence >= 0.4 and best.confidence > before.confidence, (text, best, before)
