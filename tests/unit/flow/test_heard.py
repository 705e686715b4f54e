"""Confusion-aware training: a flow's heard file (recognizer outputs of its own phrases) trains its classifier too;
each English engine has its own (`<flow>.heard.<engine>.tsv`), a plain `<flow>.heard.tsv` serves an engine without
one, and without either the flow trains on its phrases alone."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import pytest
from structlog.testing import capture_logs

from ivr.call import Hypothesis, SpeechInput
from ivr.clock import FakeClock
from ivr.config import ENGLISH_MODELS, EngineConfig, demo_path
from ivr.flow import check_file, load_text
from ivr.flow.intents import Classifier, default_factory
from ivr.flow.loader import (
    DEFAULT_HEARD_ENGINE,
    heard_flow_stem,
    heard_path,
    heard_source,
    read_heard,
    read_heard_file,
)
from ivr.flow.model import AskNode, Flow
from ivr.flow.nodes.menus import classify_speech
from ivr.flow.registry import FlowRegistry, flow_of

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


def test_heard_file_sits_next_to_the_flow_and_names_its_engine(tmp_path: pathlib.Path) -> None:
    assert heard_path(tmp_path / "hotline.yaml") == tmp_path / "hotline.heard.tsv"
    assert heard_path(tmp_path / "hotline.yaml", "moonshine") == tmp_path / "hotline.heard.moonshine.tsv"


def test_the_default_engine_is_the_configs_default() -> None:
    """Callers that name no engine (validation, `ivr simulate`, the benches) train as a default site does."""
    assert DEFAULT_HEARD_ENGINE == ENGLISH_MODELS[EngineConfig().asr_engine]["engine"]


@pytest.mark.parametrize(
    ("files", "engine", "used"),
    [
        (("heard.whisper", "heard.moonshine", "heard"), "moonshine", "tiny.heard.moonshine.tsv"),
        (("heard.whisper", "heard.moonshine"), "whisper", "tiny.heard.whisper.tsv"),
        (("heard.whisper", "heard"), "moonshine", "tiny.heard.tsv"),
        (("heard.whisper",), "pocketsphinx", None),
        (("heard.whisper", "heard"), None, "tiny.heard.tsv"),
        ((), "whisper", None),
    ],
    ids=["own-file-wins", "whisper-own", "plain-file-serves-an-engine-without-one", "another-engines-never",
         "no-engine-plain-only", "none"],
)
def test_each_engine_trains_on_its_own_file(
    tmp_path: pathlib.Path, files: tuple[str, ...], engine: str | None, used: str | None
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(FLOW, encoding="utf-8")
    for name in files:
        intent = "payment" if name == "heard" else "claim"
        (tmp_path / f"tiny.{name}.tsv").write_text(f"from {name}\t{intent}\ten\n", encoding="utf-8")
    source = heard_source(path, engine)
    assert (source.name if source is not None else None) == used
    expected = {} if used is None else read_heard_file(tmp_path / used)
    assert read_heard(path, engine) == expected
    seen: list[dict[str, list[str]]] = []

    def factory(examples: Mapping[str, Sequence[str]], heard: Mapping[str, Sequence[str]]) -> Classifier:
        seen.append({k: list(v) for k, v in heard.items()})
        return default_factory(examples, heard)

    assert check_file(path, classifier_factory=factory, heard_engine=engine).flow is not None
    assert seen == [expected]


@pytest.mark.parametrize(
    ("config", "engine"),
    [(EngineConfig(), "moonshine"), (EngineConfig(asr_engine="whisper"), "whisper"),
     (EngineConfig(asr_models={"en": {"engine": "moonshine"}}), "moonshine"),
     (EngineConfig(asr_engine="pocketsphinx"), "pocketsphinx")],
    ids=["default", "asr_engine-whisper", "asr_models-en-moonshine", "asr_engine-pocketsphinx"],
)
def test_the_engine_trains_its_flows_on_the_configured_english_engines_file(
    tmp_path: pathlib.Path, config: EngineConfig, engine: str
) -> None:
    """`Engine.start` builds its registry with `heard_engine=english_engine(config)`: a site with `asr_engine:
    whisper` trains on Whisper's file, the default (Moonshine) on Moonshine's, never another engine's."""
    from ivr.engine.app import english_engine

    assert english_engine(config) == engine
    (tmp_path / "tiny.yaml").write_text(FLOW, encoding="utf-8")
    for name in ("whisper", "moonshine"):
        (tmp_path / f"tiny.heard.{name}.tsv").write_text(f"{name} clam\tclaim\ten\n", encoding="utf-8")
    trained: list[dict[str, list[str]]] = []

    def factory(examples: Mapping[str, Sequence[str]], heard: Mapping[str, Sequence[str]]) -> Classifier:
        trained.append({intent: list(texts) for intent, texts in heard.items()})
        return default_factory(examples, heard)

    reg = FlowRegistry(tmp_path, clock=FakeClock(), classifier_factory=factory, heard_engine=english_engine(config))
    assert [r.loaded for r in reg.load_all()] == [True]
    assert trained == [{"claim": [f"{engine} clam"]} if engine != "pocketsphinx" else {}]


@pytest.mark.parametrize(
    ("name", "stem"),
    [("hotline.heard.tsv", "hotline"), ("hotline.heard.moonshine.tsv", "hotline"),
     ("my.flow.heard.whisper.tsv", "my.flow"), ("hotline.yaml", None), ("hotline.tsv", None),
     (".hotline.heard.moonshine.tsv", None), ("hotline.heard.moonshine.tsv.swp", None)],
)
def test_a_heard_file_of_any_engine_stands_for_its_flow(tmp_path: pathlib.Path, name: str, stem: str | None) -> None:
    assert heard_flow_stem(tmp_path / name) == stem
    (tmp_path / "my.flow.yml").write_text(FLOW, encoding="utf-8")
    expected = {"hotline": tmp_path / "hotline.yaml", "my.flow": tmp_path / "my.flow.yml", None: tmp_path / name}
    assert flow_of(tmp_path / name) == expected[stem]


def test_saving_the_configured_engines_heard_file_reloads_the_flow_and_anothers_changes_nothing(
    tmp_path: pathlib.Path,
) -> None:
    trained: list[dict[str, list[str]]] = []

    def factory(examples: Mapping[str, Sequence[str]], heard: Mapping[str, Sequence[str]]) -> Classifier:
        trained.append({intent: list(texts) for intent, texts in heard.items()})
        return default_factory(examples, heard)

    (tmp_path / "tiny.yaml").write_text(FLOW, encoding="utf-8")
    reg = FlowRegistry(tmp_path, clock=FakeClock(), classifier_factory=factory, heard_engine="moonshine")
    assert [r.loaded for r in reg.load_all()] == [True] and trained == [{}]
    whisper = tmp_path / "tiny.heard.whisper.tsv"
    whisper.write_text("fall a clam\tclaim\ten\n", encoding="utf-8")
    results, _ = reg.apply_changes([str(whisper)])
    assert [r.loaded for r in results] == [False] and trained[-1] == {}  # Whisper's slips are not Moonshine's
    own = tmp_path / "tiny.heard.moonshine.tsv"
    own.write_text("file a clan\tclaim\ten\n", encoding="utf-8")
    with capture_logs() as logs:
        results, _ = reg.apply_changes([str(own)])
    assert [r.loaded for r in results] == [True] and trained[-1] == {"claim": ["file a clan"]}
    assert [e["heard"] for e in logs if e["event"] == "flow_loaded"] == ["tiny.heard.moonshine.tsv"]
    first = reg.flow("tiny")
    own.unlink()  # gone: back to the phrases alone, a new version again
    results, _ = reg.apply_changes([str(own)])
    second = reg.flow("tiny")
    assert [r.loaded for r in results] == [True] and trained[-1] == {}
    assert first is not None and second is not None and first.digest != second.digest


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


def test_the_demo_hotline_ships_whispers_heard_file_and_no_other() -> None:
    """ivr/demo/flows/hotline.heard.whisper.tsv (the repository's flows/) is read where the engine loads the hotline
    with Whisper, says which recognizer built it and how, and names only the hotline's intents. Moonshine and
    PocketSphinx train on the phrases alone: on dev their own or Whisper's confusions did not raise the needs
    understood (Moonshine, within two turns: 96.6% phrases only, 96.3% with Whisper's file, 95.8% with its own)."""
    flow_file = demo_path("flows") / "hotline.yaml"
    assert heard_source(flow_file, "whisper") == heard_path(flow_file, "whisper")
    first = heard_path(flow_file, "whisper").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# engine: whisper") and "--build-heard --engine whisper" in first
    heard = read_heard(flow_file, "whisper")
    loaded = check_file(flow_file, heard_engine="whisper").flow
    assert loaded is not None and heard and set(heard) <= set(loaded.spec.intents)
    assert heard_source(flow_file, "moonshine") is None and heard_source(flow_file, "pocketsphinx") is None


def test_the_demo_hotline_trains_on_whispers_confusions() -> None:
    flow_file = demo_path("flows") / "hotline.yaml"
    heard = read_heard(flow_file, "whisper")
    deployed = check_file(flow_file, heard_engine="whisper").flow
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
