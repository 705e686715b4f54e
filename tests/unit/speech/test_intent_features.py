"""The classifier's robustness features: homophones, life events, refusals, and calibrated confidence."""

from __future__ import annotations

import random

import pytest

from ivr.speech import IntentClassifier
from ivr.speech.calibration import PlattCalibrator
from ivr.speech.concepts import NEGATED, concepts_in, mark_negations

EXAMPLES = {
    "claim": [
        "我要理赔",
        "申请理赔",
        "我爸前几天走了，他在你们这里有保险",
        "file a claim",
        "my father passed away and I need to claim",
        "I was in hospital and want the costs back",
    ],
    "surrender": ["我要退保", "怎么退保", "这个保险我不要了", "cancel my policy", "I want to cancel", "end my policy"],
    "loan": ["保单借款", "我想用保单贷款", "急用钱", "policy loan", "borrow against my policy", "I need cash urgently"],
    "policy_change": ["修改地址", "搬家了要改地址", "改手机号", "update my address", "I moved house", "new phone"],
    "complaint": ["我要投诉", "服务太差了", "业务员骗我", "I want to complain", "your staff was rude", "poor service"],
    "payment": ["交保费", "续期缴费", "保费扣款失败", "pay my premium", "my payment failed", "the payment bounced"],
}


@pytest.fixture(scope="module")
def clf() -> IntentClassifier:
    return IntentClassifier.train(EXAMPLES)


@pytest.mark.parametrize(
    ("misheard", "meant"),
    [("我要投述", "我要投诉"), ("我要里赔", "我要理赔"), ("交保非", "交保费"), ("我要推保", "我要退保")],
    ids=["tousu", "lipei", "baofei-one-char", "tuibao"],
)
def test_a_homophone_error_maps_like_its_correct_form(clf: IntentClassifier, misheard: str, meant: str) -> None:
    heard, said = clf.classify(misheard)[0], clf.classify(meant)[0]
    assert heard.intent == said.intent
    assert heard.confidence >= 0.35, "a one-sound slip still reaches at least a confirmation"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("my wife died last month", "claim"),  # no word shared with the claim phrases: the death concept
        ("我妈去世了", "claim"),  # 去世 is in no phrase; 走了 and "passed away" are
        ("our family relocated to another city", "policy_change"),
        ("我们搬到外地了", "policy_change"),
        ("手头紧", "loan"),
    ],
)
def test_an_indirect_need_maps_through_its_life_event(clf: IntentClassifier, text: str, intent: str) -> None:
    assert clf.classify(text)[0].intent == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [("I need cash urgently but I don't want to cancel", "loan"), ("急用钱但是不想退保", "loan")],
)
def test_a_service_the_caller_rules_out_does_not_win(clf: IntentClassifier, text: str, intent: str) -> None:
    assert clf.classify(text)[0].intent == intent


def test_concepts_are_found_in_either_language() -> None:
    assert concepts_in("My father passed away") == ["death"]
    assert concepts_in("我爸走了") == ["death"]
    assert concepts_in("I just moved house") == ["moved"]
    assert concepts_in("what time is it") == []
    assert concepts_in("孩子发烧住了三天院") == ["medical"]  # a split verb: 住…院
    assert concepts_in("我要投述") == ["grievance"]  # 投诉 misheard: matched by sound


def test_a_refusal_turns_the_refused_service_into_one_token() -> None:
    assert f"{NEGATED}cancel" in mark_negations("i don't want to cancel it").split()
    assert f"{NEGATED}退保" in mark_negations("缺钱但是不想退保").split()
    # "不想要了" refuses the policy itself (a surrender): nothing is negated.
    assert NEGATED not in mark_negations("这个保险不想要了")


def _synthetic(n: int, seed: int) -> tuple[list[float], list[bool]]:
    """Raw scores whose true chance of being right is score**2: a classifier that is overconfident."""
    rng = random.Random(seed)
    scores = [rng.uniform(0.05, 1.0) for _ in range(n)]
    return scores, [rng.random() < s * s for s in scores]


def test_a_calibrated_threshold_holds_its_error_rate() -> None:
    calibrator = PlattCalibrator.fit(*_synthetic(3000, seed=1))
    scores, right = _synthetic(20000, seed=2)
    calibrated = [calibrator(s) for s in scores]
    for threshold in (0.35, 0.6, 0.8, 0.9):
        kept = [r for c, r in zip(calibrated, right, strict=True) if c >= threshold]
        assert kept, threshold
        error = 1 - sum(kept) / len(kept)
        assert error <= 1 - threshold, f"acting at >= {threshold} promised <= {1 - threshold:.2f}, got {error:.3f}"
        # ...and does not throw away more than it must: the raw score at the same cut errs far more.
        raw_kept = [r for s, r in zip(scores, right, strict=True) if s >= threshold]
        assert 1 - sum(raw_kept) / len(raw_kept) > error
    for low in (0.2, 0.4, 0.6, 0.8):  # reliability: within a band, mean confidence ~ share right
        band = [(c, r) for c, r in zip(calibrated, right, strict=True) if low <= c < low + 0.2]
        mean_conf = sum(c for c, _ in band) / len(band)
        assert abs(mean_conf - sum(r for _, r in band) / len(band)) < 0.05, low


def test_calibration_is_monotone_and_falls_back_to_identity() -> None:
    calibrator = PlattCalibrator.fit(*_synthetic(1000, seed=3))
    points = [calibrator(s / 20) for s in range(1, 20)]
    assert points == sorted(points)
    assert calibrator(0.0) == 0.0
    identity = PlattCalibrator()
    assert PlattCalibrator.fit([0.9] * 20, [True] * 20) == identity  # no miss: nothing to fit
    assert PlattCalibrator.fit([0.5], [False]) == identity
    assert abs(identity(0.7) - 0.7) < 1e-9
    with pytest.raises(ValueError, match="3 scores but 2 outcomes"):
        PlattCalibrator.fit([0.1, 0.2, 0.3], [True, False])


def test_each_score_carries_a_calibrated_probability(clf: IntentClassifier) -> None:
    scores = clf.classify("我要理赔")
    assert all(0.0 <= s.p_right <= 1.0 for s in scores)
    assert scores[0].p_right == round(clf.calibrator(scores[0].confidence), 4)
    assert sum(s.p_right for s in scores) <= 1.0 + 1e-3
    ranked = sorted((clf.classify(t)[0] for t in ["我要理赔", "理赔", "今天天气怎么样", "I moved house"]),
                    key=lambda s: s.confidence)
    assert [s.p_right for s in ranked] == sorted(s.p_right for s in ranked)
