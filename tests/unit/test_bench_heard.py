"""bench.speech_eval's confusion-aware training file: what `--build-heard` keeps, and which file the speech benches
train on (the flow's own for the engine they run, as the engine loads it, unless `--heard` names another or none)."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from bench import speech_eval as se
from ivr.flow.loader import DEFAULT_HEARD_ENGINE, read_heard


def test_build_keeps_only_what_the_phrases_alone_would_not_act_on_rightly() -> None:
    pairs = [("i want to file a claim", "claim"), ("policy alone", "loan"), ("pay my premium", "claim")]
    assert se.confusions(se.FLOW, pairs) == [("policy alone", "loan"), ("pay my premium", "claim")]


def test_the_benches_train_on_the_flows_own_heard_file_unless_told(tmp_path: pathlib.Path) -> None:
    parser = argparse.ArgumentParser()
    se.heard_args(parser)
    # The default English engine's file, as the engine loads it (the hotline ships none for Moonshine: phrases only).
    assert se.flow_heard(parser.parse_args([])) == read_heard(se.FLOW, DEFAULT_HEARD_ENGINE)
    assert se.flow_heard(parser.parse_args(["--heard", "none"])) == {}
    candidate = tmp_path / "hotline.heard.tsv"
    candidate.write_text("# built elsewhere\nfall a clam\tclaim\ten\n", encoding="utf-8")
    assert se.flow_heard(parser.parse_args(["--heard", str(candidate)])) == {"claim": ["fall a clam"]}


@pytest.mark.parametrize("engine", ["whisper", "moonshine", "pocketsphinx"])
def test_the_benches_train_on_the_heard_file_of_the_engine_they_run(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--engine moonshine` scores the classifier a Moonshine site trains, not Whisper's: the hotline ships Whisper's
    file only, so Moonshine and PocketSphinx are scored on the phrases alone."""
    monkeypatch.setattr(se, "ENGINE", None)
    monkeypatch.setattr(se, "ANSWERS", None)
    parser = argparse.ArgumentParser()
    se.audio_args(parser)
    se.heard_args(parser)
    args = parser.parse_args(["--engine", engine])
    se.use_engine(args)
    assert se.flow_heard(args) == read_heard(se.FLOW, engine)
    assert (se.flow_heard(args) != {}) == (engine == "whisper")
    assert se.heard_label(args).startswith(f"flows/hotline.heard.{engine}.tsv" if engine == "whisper"
                                           else "no heard file")
