"""The `ivr` command: help everywhere, global flags anywhere, exit codes 0/1/2, errors on stderr, and the
operator commands (config show/check, init, purge)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from ivr.cli import _subparsers, build_parser, main
from ivr.journey import CallRecord, Outcome
from ivr.store import SqliteStore


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import logging

    for name in [n for n in os.environ if n.startswith("IVR_")]:
        monkeypatch.delenv(name)
    hooks = sys.excepthook
    yield
    structlog.reset_defaults()  # main() configured logging onto the captured stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "ivr-structlog"]:
        root.removeHandler(handler)
    sys.excepthook = hooks


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += [(*prefix, name), *command_paths(child, (*prefix, name))]
    return found


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = command_paths(build_parser())
    assert ("config", "show") in paths and ("init",) in paths and ("purge",) in paths
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0, path
        assert "usage: ivr" in capsys.readouterr().out


def test_no_command_and_a_bad_flag_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    with pytest.raises(SystemExit) as done:
        main(["serve", "--no-such-flag"])
    assert done.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_config_help_promises_only_what_exists(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "trunks" not in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["--log-json", "--log-level", "debug", "config", "show", "--json"],
    ["config", "--log-json", "show", "--log-level", "debug", "--json"],
    ["config", "show", "--json", "--log-json", "--log-level", "debug"],
])
def test_global_flags_work_anywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["log_level"] == {"value": "debug", "source": "flag --log-level"}
    assert shown["log_json"] == {"value": "true", "source": "flag --log-json"}


def test_serve_flags_override_the_file_only_when_given(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("sip_port: 5070\nhttp_port: 9000\ndb: records.db\nflows_dir: flows\n")
    monkeypatch.setenv("IVR_HTTP_PORT", "9100")
    assert main(["config", "show", "--json", "--config", str(config), "--sip", "127.0.0.2:5080"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sip_port"] == {"value": "5080", "source": "flag --sip"}
    assert shown["sip_host"] == {"value": "127.0.0.2", "source": "flag --sip"}
    assert shown["http_port"] == {"value": "9100", "source": "env IVR_HTTP_PORT"}
    assert shown["db"] == {"value": str(tmp_path / "records.db"), "source": f"file {config}:3"}
    assert shown["flows_dir"]["value"] == str(tmp_path / "flows")


def test_serve_refuses_a_bad_config_with_exit_2_on_stderr(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text('sip_port: "x"\n')
    assert main(["serve", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f'ivr serve: {config}:1: sip_port: expected a whole number, got \'x\' (str)' in err


def test_config_check_exit_codes(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("sip_port: 5070\n")
    assert main(["config", "check", "--config", str(good)]) == 0
    assert "config ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("flows_dir: missing\n")
    assert main(["config", "check", "--config", str(bad)]) == 1
    assert f"{bad}:1: flows_dir:" in capsys.readouterr().err
    assert main(["config", "check", "--set", "max_calls=lots"]) == 1
    assert "--set max_calls: max_calls: expected a whole number" in capsys.readouterr().err


def test_init_writes_a_site_that_checks_from_any_directory(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    assert main(["init", str(site)]) == 0
    for name in ("ivr.yaml", "ivr.service", "flows/hotline.yaml", "dialects/cmn.yaml", "config/agents.yaml",
                 "config/queues.yaml", "prompts/nan/greeting.wav"):
        assert (site / name).is_file(), name
    unit = (site / "ivr.service").read_text()
    assert f"--config {site / 'ivr.yaml'}" in unit and "User=root" not in unit
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["config", "show", "--json", "--config", str(site / "ivr.yaml")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["flows_dir"]["value"] == str(site / "flows")
    assert shown["db"]["value"] == str(site / "var" / "ivr.db")
    assert main(["config", "check", "--config", str(site / "ivr.yaml")]) == 0
    assert main(["init", str(site)]) == 2
    assert "folder is not empty" in capsys.readouterr().err


def test_purge_deletes_what_is_older_than_the_age(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ivr.db"
    now = datetime.now(UTC)
    store = SqliteStore(db)
    for call_id, age in (("old", timedelta(days=45)), ("new", timedelta(days=3))):
        record = CallRecord(call_id, "13800138000", "95519", now - age, outcome=Outcome.SELF_SERVED)
        store.call_started(record)
        store.call_finished(record)
    store.close()
    from ivr.voice.cache import PERSONAL_DIR

    renders = tmp_path / "cache" / PERSONAL_DIR / "yue"
    renders.mkdir(parents=True)
    for name, age in (("old.wav", timedelta(days=40)), ("new.wav", timedelta(days=1))):
        (renders / name).write_bytes(b"RIFF")
        stamp = (now - age).timestamp()
        os.utime(renders / name, (stamp, stamp))
    cache = f"prompt_cache_dir={tmp_path / 'cache'}"
    assert main(["purge", "--older-than", "30d", "--db", str(db), "--set", cache]) == 0
    assert "1 calls" in (out := capsys.readouterr().out) and "1 caller-specific renders" in out
    assert sorted(p.name for p in renders.iterdir()) == ["new.wav"]
    with SqliteStore(db) as reopened:
        assert reopened.get_call("old") is None and reopened.get_call("new") is not None
    assert main(["purge", "--older-than", "soon", "--db", str(db)]) == 2
    assert "bad age 'soon'" in capsys.readouterr().err


def test_global_options_reach_every_subcommand() -> None:
    for child in _subparsers(build_parser()):
        assert any("--log-json" in a.option_strings for a in child._actions), child.prog


def test_token_new_prints_a_token_and_the_hashed_entry_the_config_accepts(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    assert main(["token", "new", "ops-bot", "--role", "supervisor"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    entry = err.splitlines()[-1].removeprefix("  - ")
    assert json.loads(entry) == {"name": "ops-bot", "role": "supervisor",
                                 "sha256": hashlib.sha256(token.encode()).hexdigest()}
    config = tmp_path / "ivr.yaml"
    config.write_text(f"api_tokens:\n  - {entry}\n")
    assert main(["config", "check", "--config", str(config)]) == 0
    assert token not in capsys.readouterr().out
    config.write_text("api_tokens:\n  - {name: ops, role: root, sha256: abc}\n")
    assert main(["config", "check", "--config", str(config)]) == 1
    assert f"{config}:2: api_tokens[0]" in capsys.readouterr().err


def test_asr_offers_every_engine_the_speech_package_knows() -> None:
    """`ivr asr --engine` lists the engines literally, so that `ivr` starts without importing the speech package;
    this keeps that list and `EngineKind` one set."""
    from ivr.speech.recognizer import EngineKind

    (asr,) = [child for child in _subparsers(build_parser()) if child.prog.endswith(" asr")]
    (engine,) = [a for a in asr._actions if "--engine" in a.option_strings]
    assert sorted(engine.choices or ()) == sorted(e.value for e in EngineKind)


@pytest.mark.parametrize(("argv", "env", "engine"), [
    ([], {}, "moonshine"),
    ([], {"IVR_ASR_ENGINE": "pocketsphinx"}, "pocketsphinx"),
    ([], {"IVR_ASR_ENGINE": "whisper"}, "whisper"),
    (["--engine", "vosk"], {}, "vosk"),
    ([], {"IVR_ASR_MODELS": "{en: {engine: whisper}}"}, "whisper"),
    (["--dialect", "ko"], {"IVR_ASR_MODELS": "{ko: {engine: vosk, model: /srv/ko}}"}, "vosk"),
    (["--dialect", "yue"], {"IVR_ASR_MODELS": "{yue: {engine: pocketsphinx}}"}, "pocketsphinx"),
    (["--dialect", "cmn"], {}, "vosk"),  # no model for it: run_asr refuses, saying how to configure one
])
def test_asr_transcribes_with_the_engine_a_call_in_that_dialect_would_use_unless_told(
    argv: list[str], env: dict[str, str], engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ivr.speech.commands

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    used: list[str] = []

    def run_asr(wav: str, *, engine: str, **_: object) -> int:
        used.append(engine)
        return 0

    monkeypatch.setattr(ivr.speech.commands, "run_asr", run_asr)
    assert main(["asr", "call.wav", *argv]) == 0
    assert used == [engine]
