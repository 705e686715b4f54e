"""Confusion-aware training: a flow's `<flow>.heard.tsv` (recognizer outputs of its own phrases) trains
its classifier too; without the file the flow trains on its phrases alone."""

from __future__ import annotations

import pathlib

from ivr.call import Hypothesis, SpeechInput
from ivr.flow import check_file
from ivr.flow.loader import heard_path, read_heard
from ivr.flow.nodes.menus import classify_speech

FLOW = """\
id: tiny
dialects: [en]
default_dialect: en
queues: [general]
human: agent
on_error: {queue: general}
intents:
  claim: {phrases: {en: [file a claim, make a claim, claim for my hospital bills]}}
  payment: {phrases: {en: [pay my premium, make a payment, premium payment]}}
prompts:
  ask: {en: What do you need?}
start: need
nodes:
  need:
    type: ask
    prompt: ask
    intents: {claim: done, payment: done}
    keywords: {claim: [claim]}
  done: {type: hangup}
  agent: {type: queue, queue: general}
"""


def _flow(tmp_path: pathlib.Path, heard: str | None) -> pathlib.Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(FLOW, encoding="utf-8")
    if heard is not None:
        heard_path(path).write_text(heard, encoding="utf-8")
    return path


def test_heard_file_sits_next_to_the_flow(tmp_path: pathlib.Path) -> None:
    assert heard_path(tmp_path / "hotline.yaml") == tmp_path / "hotline.heard.tsv"


def test_recognizer_outputs_teach_the_classifier_what_the_recognizer_makes_of_a_phrase(
    tmp_path: pathlib.Path,
) -> None:
    garbled = "fall a clam all mile\tclaim\ten\nlay my premier rum\tpayment\ten\n"
    (tmp_path / "plain").mkdir()
    without = check_file(_flow(tmp_path / "plain", None)).flow
    with_heard = check_file(_flow(tmp_path, "# comment\n" + garbled)).flow
    assert without is not None and with_heard is not None
    assert read_heard(tmp_path / "tiny.yaml") == {"claim": ["fall a clam all mile"], "payment": ["lay my premier rum"]}
    assert without.classifier is not None and with_heard.classifier is not None
    before = {s.intent: s.confidence for s in without.classifier.classify("lay my premier rum")}
    after = {s.intent: s.confidence for s in with_heard.classifier.classify("lay my premier rum")}
    assert after["payment"] > before["payment"]


def test_unknown_intents_and_a_missing_file_are_ignored(tmp_path: pathlib.Path) -> None:
    loaded = check_file(_flow(tmp_path, "something\tno_such_intent\ten\n"))
    assert loaded.flow is not None and loaded.flow.classifier is not None
    assert read_heard(tmp_path / "other.yaml") == {}


def test_a_keyword_the_caller_took_back_does_not_decide(tmp_path: pathlib.Path) -> None:
    flow = check_file(_flow(tmp_path, None)).flow
    assert flow is not None
    node = flow.node("need")
    intent, _, source = classify_speech(node, flow.classifier, SpeechInput("claim no wait I want to pay my premium",
                                                                             0.9, "en"))
    assert (intent, source) == ("payment", "classifier")
    intent, _, source = classify_speech(node, flow.classifier, SpeechInput("I want to file a claim", 0.9, "en"))
    assert (intent, source) == ("claim", "keyword")


def test_a_keyword_counts_every_alternative_that_says_it(tmp_path: pathlib.Path) -> None:
    """PocketSphinx's n-best for a clear one-word answer is the word with fillers around it: the exact text
    gets a small share (0.28), but every alternative says the keyword, so the intent is sure."""
    flow = check_file(_flow(tmp_path, None)).flow
    assert flow is not None
    node = flow.node("need")
    alternatives = ("claim", "claim to", "claim i", "i claim", "a claim")
    nbest = tuple(Hypothesis(text, 0.28 if i == 0 else 0.36) for i, text in enumerate(alternatives))
    heard = SpeechInput("claim", 0.28, "en", nbest)
    assert classify_speech(node, flow.classifier, heard) == ("claim", 1.0, "keyword")
    split = SpeechInput("claim", 0.4, "en", (Hypothesis("claim", 0.4), Hypothesis("pay my premium", 0.6)))
    assert classify_speech(node, flow.classifier, split) == ("claim", 0.4, "keyword")
    alone = SpeechInput("claim", 0.28, "en")
    assert classify_speech(node, flow.classifier, alone) == ("claim", 0.28, "keyword")


def test_a_negated_keyword_does_not_decide(tmp_path: pathlib.Path) -> None:
    """"I don't want to make a claim" is no claim: the keyword is not acted on (the classifier may still ask)."""
    flow = check_file(_flow(tmp_path, None)).flow
    assert flow is not None
    node = flow.node("need")
    for said in ("I don't want to make a claim", "no claim I want to pay my premium", "not a claim"):
        _, _, source = classify_speech(node, flow.classifier, SpeechInput(said, 0.9, "en"))
        assert source != "keyword", said
    for said in ("my claim please", "not sure, a claim I think"):
        assert classify_speech(node, flow.classifier, SpeechInput(said, 0.9, "en"))[2] == "keyword", said


def test_a_chinese_keyword_right_after_a_negation_is_not_said() -> None:
    from ivr.flow.nodes.menus import _says

    assert not _says("缺钱用但是不想退保", "退保") and not _says("别退保了", "退保")
    assert not _says("我不同意", "同意") and _says("我同意", "同意")
    assert _says("没钱了我要退保", "退保") and _says("不想等了，我要退保", "退保")
