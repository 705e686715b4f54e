"""The held-out evaluation sets stay held out: no row is a training phrase, every intent and kind is there."""

from __future__ import annotations

import pathlib

import pytest

from ivr.speech.evaluation import read_eval_rows
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.intent import normalize_utterance

ROOT = pathlib.Path(__file__).resolve().parents[3]
EVAL = ROOT / "tests" / "data" / "eval"
SETS = ("eval_en", "eval_cmn", "dev_en", "dev_cmn")
KINDS = {"paraphrase", "indirect", "filler", "correction", "homophone"}


@pytest.fixture(scope="module")
def training() -> set[str]:
    intents = load_flow_intents(ROOT / "flows" / "hotline.yaml")
    return {normalize_utterance(p) for ps in intents.examples().values() for p in ps}


@pytest.mark.parametrize("name", SETS)
def test_no_evaluation_row_is_a_training_phrase(name: str, training: set[str]) -> None:
    rows = read_eval_rows(EVAL / f"{name}.tsv")
    leaked = [u for u, _, _ in rows if normalize_utterance(u) in training]
    assert leaked == []


def test_eval_and_dev_splits_do_not_share_rows() -> None:
    for lang in ("en", "cmn"):
        evaluation = {u for u, _, _ in read_eval_rows(EVAL / f"eval_{lang}.tsv")}
        dev = {u for u, _, _ in read_eval_rows(EVAL / f"dev_{lang}.tsv")}
        assert evaluation.isdisjoint(dev)


@pytest.mark.parametrize("lang", ["en", "cmn"])
def test_every_intent_has_every_kind(lang: str) -> None:
    intents = load_flow_intents(ROOT / "flows" / "hotline.yaml").intents
    rows = read_eval_rows(EVAL / f"eval_{lang}.tsv")
    kinds = KINDS - ({"homophone"} if lang == "en" else set())
    for intent in intents:
        have = {k for _, i, k in rows if i == intent}
        assert have == kinds, intent
    assert {i for _, i, _ in rows} == set(intents)
