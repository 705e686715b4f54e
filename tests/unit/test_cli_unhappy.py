"""`ivr` on a user's mistakes: a site folder that cannot be written, a campaign export from a database
that is not there, a purge of a mistyped database, a WAV that is not one, a graph format graphviz lacks.
Each is one line on stderr naming the problem, exit 1 (2 for a bad flag value), never a traceback."""

from __future__ import annotations

import pathlib

import pytest

from ivr.cli import main
from tests.unit.test_cli import _clean_environment  # noqa: F401  (autouse: no IVR_* settings, logging reset)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_init_under_a_file_says_it_cannot_write_the_site(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    assert main(["init", str(blocker / "site")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ivr init: cannot write the site:") and str(blocker) in err
    assert "Traceback" not in err


def test_campaign_export_from_an_unreachable_database_names_it_with_the_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    assert main(["campaign", "export", "revisit", "--db", "postgresql://ivr:s3cret@127.0.0.1:1/ivr"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the database postgresql://ivr:***@127.0.0.1:1/ivr" in err
    assert "s3cret" not in err and "Traceback" not in err


def test_purge_with_a_mistyped_db_refuses_and_creates_nothing(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "nowhere" / "ivr.db"
    assert main(["purge", "--older-than", "30d", "--db", str(typo)]) == 1
    assert f"no call-record database at {typo}" in capsys.readouterr().err
    assert not typo.parent.exists()  # it used to make an empty database and report "0 calls purged"


def test_asr_of_a_file_that_is_not_a_wav_says_so(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n", encoding="utf-8")
    assert main(["asr", str(text)]) == 1
    err = capsys.readouterr().err
    assert f"ivr asr: {text}: not a readable WAV file" in err and "Traceback" not in err


def test_asr_with_a_config_naming_an_unknown_engine_names_the_dialect_and_the_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IVR_ASR_MODELS", "{en: {engine: wisper}}")
    assert main(["asr", "call.wav"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ivr asr: the config's speech models:") and "'en'" in err and "'wisper'" in err
    assert "whisper" in err and "Traceback" not in err


def test_graph_to_a_format_graphviz_does_not_know_is_a_usage_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hotline.xyz"
    assert main(["graph", str(ROOT / "flows" / "hotline.yaml"), "-o", str(out)]) == 2
    assert "graphviz cannot write '.xyz' files" in capsys.readouterr().err
    assert not out.exists()
