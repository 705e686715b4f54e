from __future__ import annotations

import pathlib

import pytest

from ivr.cli import main
from ivr.speech import IntentSourceError
from ivr.speech.evaluation import evaluate, read_eval_tsv
from ivr.speech.flow_intents import ANY_LANGUAGE, load_flow_intents

FLOW = """\
id: test
dialects: [cmn, en]
queues: [general]
intents:
  claim:
    phrases:
      cmn: [我要理赔, 申请理赔, 住院报销]
      en: [I want to file a claim, make a claim]
  agent:
    phrases: {cmn: [转人工, 人工服务], en: [talk to an agent, a real person]}
  payment:
    phrases: {cmn: [交保费, 续期缴费], en: [pay my premium]}
prompts:
  ask: {cmn: 请讲, en: Please say}
nodes:
  need:
    type: ask
    prompt: ask
    intents: {claim: bye, agent: bye, payment: bye}
    keywords: {claim: [理赔, claim]}
  bye: {type: hangup}
"""


@pytest.fixture
def flow(tmp_path: pathlib.Path) -> pathlib.Path:
    p = tmp_path / "flow.yaml"
    p.write_text(FLOW, encoding="utf-8")
    return p


def test_reads_phrases_by_dialect_and_the_ask_nodes_keywords(flow: pathlib.Path) -> None:
    fi = load_flow_intents(flow)
    assert fi.intents == ("claim", "agent", "payment")
    assert fi.phrases["claim"]["en"] == ("I want to file a claim", "make a claim")
    assert fi.phrases["payment"]["cmn"] == ("交保费", "续期缴费")
    assert fi.keywords["claim"][ANY_LANGUAGE] == ("理赔", "claim") and fi.keywords["agent"] == {}
    assert fi.examples(["en"])["claim"] == ["I want to file a claim", "make a claim"]
    assert fi.recognizer_phrases("en") == (
        "I want to file a claim",
        "make a claim",
        "talk to an agent",
        "a real person",
        "pay my premium",
    )


def test_trains_a_classifier(flow: pathlib.Path) -> None:
    clf = load_flow_intents(flow).train()
    assert clf.classify("嗯我想申请一下理赔")[0].intent == "claim"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: t\nqueues: [general]\nprompts: {bye: {cmn: 再见}}\nnodes: {bye: {type: hangup, prompt: bye}}\n",
         "no `intents:` mapping"),
        (FLOW.replace("[交保费, 续期缴费]", "{a: 1}"), r"the flow loader refused it: .*bad\.yaml:\d+:\d+: "),
        ("intents: [\n", r"the flow loader refused it: .*YAML syntax error"),
    ],
    ids=["missing", "bad-type", "bad-yaml"],
)
def test_bad_sections_name_file_and_problem(tmp_path: pathlib.Path, text: str, message: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(IntentSourceError, match=message) as info:
        load_flow_intents(p)
    assert str(p) in str(info.value)


def test_missing_file_is_an_intent_source_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(IntentSourceError, match="cannot read flow file"):
        load_flow_intents(tmp_path / "nope.yaml")


def test_evaluation_report_counts_and_ends_with_accuracy(flow: pathlib.Path, tmp_path: pathlib.Path) -> None:
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("utterance\tintent\n我想理赔\tclaim\n转人工吧\tagent\n交保费\tclaim\n", encoding="utf-8")
    report = evaluate(load_flow_intents(flow).train(), read_eval_tsv(tsv))
    assert (report.correct, report.total) == (2, 3)
    assert report.confusions == (("claim", "payment", 1),)
    assert report.lines()[-1] == "accuracy: 0.667 (2/3)"


def test_eval_tsv_with_wrong_columns_names_the_line(tmp_path: pathlib.Path) -> None:
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("utterance\tintent\nonly one column\n", encoding="utf-8")
    with pytest.raises(IntentSourceError, match=r"eval.tsv:2: expected `utterance<TAB>intent\[<TAB>kind\]`"):
        read_eval_tsv(tsv)


def test_cli_nlu_ranks_intents(flow: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nlu", str(flow), "I'd like to make a claim please"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "claim" and len(lines) == 3
    assert 0.0 <= float(lines[0].split()[1]) <= 1.0


def test_cli_nlu_eval_last_line_is_accuracy(
    flow: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("我想理赔\tclaim\n人工服务\tagent\n", encoding="utf-8")
    assert main(["nlu", str(flow), "--eval", str(tsv)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accuracy: 1.000 (2/2)"


def test_cli_nlu_usage_and_load_errors(flow: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nlu", str(flow)]) == 2
    assert main(["nlu", str(flow) + ".missing", "hi"]) == 1
    assert "cannot read flow file" in capsys.readouterr().err
