"""Confusion-aware training: a flow's `<flow>.heard.tsv` (recognizer outputs of its own phrases) trains
its classifier too; without the file the flow trains on its phrases alone."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

from ivr.call import Hypothesis, SpeechInput
from ivr.config import demo_path
from ivr.flow import check_file, load_text
from ivr.flow.intents import Classifier, default_factory
from ivr.flow.loader import heard_path, read_heard, read_heard_file
from ivr.flow.model import AskNode, Flow
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


def _need(flow: Flow) -> AskNode:
    node = flow.node("need")
    assert isinstance(node, AskNode)
    return node


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


def test_heard_lines_reach_the_classifier_apart_from_the_phrases(tmp_path: pathlib.Path) -> None:
    """The factory gets them as their own argument (the classifier weighs them below the phrases), not mixed into
    the phrases; lines of an intent the flow does not have are dropped."""
    seen: list[tuple[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]]] = []

    def factory(examples: Mapping[str, Sequence[str]], heard: Mapping[str, Sequence[str]]) -> Classifier:
        seen.append((examples, heard))
        return default_factory(examples, heard)

    path = _flow(tmp_path, "fall a clam all mile\tclaim\ten\nsomething\tno_such_intent\ten\n")
    assert check_file(path, classifier_factory=factory).flow is not None
    (examples, heard), = seen
    assert heard == {"claim": ["fall a clam all mile"]}
    assert examples["claim"] == ["file a claim", "make a claim", "claim for my hospital bills"]


def test_a_heard_file_can_be_read_by_its_own_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "candidate.tsv"
    path.write_text("# engine: whisper\nlay my premier rum\tpayment\ten\n", encoding="utf-8")
    assert read_heard_file(path) == {"payment": ["lay my premier rum"]}
    assert read_heard_file(tmp_path / "missing.tsv") == {}


def test_the_demo_hotline_ships_its_whisper_confusions_and_trains_on_them() -> None:
    """ivr/demo/flows/hotline.heard.tsv (the repository's flows/) is read where the engine loads the hotline, says
    which recognizer built it and how, and names only the hotline's intents."""
    flow_file = demo_path("flows") / "hotline.yaml"
    first = heard_path(flow_file).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# engine: whisper") and "--build-heard --engine whisper" in first
    heard = read_heard(flow_file)
    deployed = check_file(flow_file).flow
    phrases_only = load_text(flow_file.read_text(encoding="utf-8"), str(flow_file), heard={}).flow
    assert deployed is not None and phrases_only is not None
    assert heard and set(heard) <= set(deployed.spec.intents)
    node = _need(deployed)
    # Whisper hears "a loan" as "alone": the phrases alone read these as something else, or doubt them.
    for said in ("policy alone", "can i take alone on my policy"):
        intent, confidence, _ = classify_speech(node, deployed.classifier, SpeechInput(said, 1.0, "en"))
        assert intent == "loan" and confidence >= 0.6, said
        intent, confidence, _ = classify_speech(node, phrases_only.classifier, SpeechInput(said, 1.0, "en"))
        assert intent != "loan" or confidence < 0.6, said


def test_a_keyword_the_caller_took_back_does_not_decide(tmp_path: pathlib.Path) -> None:
    flow = check_file(_flow(tmp_path, None)).flow
    assert flow is not None
    node = _need(flow)
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
    node = _need(flow)
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
    node = _need(flow)
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
