"""`ivr asr --engine vosk --dialect cmn` with no model configured fails at once, saying how to fix it."""

from __future__ import annotations

import pathlib

from ivr.speech.commands import configured_model, run_asr

WAV = pathlib.Path(__file__).resolve().parents[2] / "data" / "speech" / "cmn_claim.wav"


def test_vosk_without_a_configured_model_is_refused_with_the_fix() -> None:
    out: list[str] = []
    err: list[str] = []
    rc = run_asr(str(WAV), engine="vosk", dialect="cmn", model=None, phrases_file=None,
                 out=out.append, err=err.append, configured={"yue": "/models/yue"})
    assert rc == 1 and out == []
    assert "no Vosk model configured for dialect 'cmn'" in err[0]
    assert "--model DIR" in err[0] and "asr_models" in err[0] and "docs/SPEECH.md" in err[0]


def test_a_configured_folder_that_is_not_there_names_dialect_and_path(tmp_path: pathlib.Path) -> None:
    err: list[str] = []
    rc = run_asr(str(WAV), engine="vosk", dialect="cmn", model=None, phrases_file=None, out=print,
                 err=err.append, configured={"cmn": {"engine": "vosk", "model": str(tmp_path / "none")}})
    assert rc == 1
    assert "'cmn'" in err[0] and "does not exist" in err[0]


def test_configured_model_reads_a_path_or_a_mapping() -> None:
    assert configured_model("cmn", {"cmn": "/m/cn"}) == "/m/cn"
    assert configured_model("cmn", {"cmn": {"engine": "vosk", "model": "/m/cn"}}) == "/m/cn"
    assert configured_model("cmn", {"cmn": {"engine": "vosk"}}) is None
    assert configured_model("cmn", {}) is None
