"""bench.speech_eval's confusion-aware training file: what `--build-heard` keeps, and which file the speech benches
train on (the flow's own, as the engine loads it, unless `--heard` names another or none)."""

from __future__ import annotations

import argparse
import pathlib

from bench import speech_eval as se
from ivr.flow.loader import read_heard


def test_build_keeps_only_what_the_phrases_alone_would_not_act_on_rightly() -> None:
    pairs = [("i want to file a claim", "claim"), ("policy alone", "loan"), ("pay my premium", "claim")]
    assert se.confusions(se.FLOW, pairs) == [("policy alone", "loan"), ("pay my premium", "claim")]


def test_the_benches_train_on_the_flows_own_heard_file_unless_told(tmp_path: pathlib.Path) -> None:
    parser = argparse.ArgumentParser()
    se.heard_args(parser)
    assert se.flow_heard(parser.parse_args([])) == read_heard(se.FLOW) != {}
    assert se.flow_heard(parser.parse_args(["--heard", "none"])) == {}
    candidate = tmp_path / "hotline.heard.tsv"
    candidate.write_text("# built elsewhere\nfall a clam\tclaim\ten\n", encoding="utf-8")
    assert se.flow_heard(parser.parse_args(["--heard", str(candidate)])) == {"claim": ["fall a clam"]}
