"""bench.speech_load's pure parts: which tree runs first each round, turns shed from the engine's log, a row."""

from __future__ import annotations

import json
import pathlib

from bench.speech_load import plan, row, shed_turns


def test_rounds_alternate_which_tree_runs_first() -> None:
    here, base = pathlib.Path("."), pathlib.Path("/tmp/base")
    runs = plan([10.0], [("this tree", here), ("base", base)], ["ivr"], 3)
    assert [t for _, t, _, _ in runs] == ["this tree", "base", "base", "this tree", "this tree", "base"]


def test_each_round_runs_every_generator_on_every_tree() -> None:
    here, base = pathlib.Path("."), pathlib.Path("/tmp/base")
    runs = plan([8.0, 10.0], [("this tree", here), ("base", base)], ["sipp", "ivr"], 2)
    assert len(runs) == 2 * 2 * 2 * 2
    assert runs[:4] == [(8.0, "this tree", here, "sipp"), (8.0, "base", base, "sipp"),
                        (8.0, "this tree", here, "ivr"), (8.0, "base", base, "ivr")]
    assert runs[4:8] == [(8.0, "base", base, "ivr"), (8.0, "this tree", here, "ivr"),
                         (8.0, "base", base, "sipp"), (8.0, "this tree", here, "sipp")]


def test_shed_turns_are_counted_from_the_engines_json_log(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "engine.log"
    lines = [
        {"event": "speech_shed", "languages": ["en"], "lag_s": 2.104, "level": "warning"},
        {"event": "rtp_send_failed", "error": "speech_shed mentioned elsewhere", "level": "warning"},
        {"event": "speech_shed", "languages": ["en"], "lag_s": 3.5, "level": "warning"},
    ]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json: \"speech_shed\"\n")
    assert shed_turns(log) == {"turns": 2, "max_lag_s": 3.5}
    (tmp_path / "quiet.log").write_text("")
    assert shed_turns(tmp_path / "quiet.log") == {"turns": 0, "max_lag_s": 0.0}


def test_a_row_says_how_many_turns_were_shed() -> None:
    report: dict[str, object] = {
        "calls": 300, "answered": 300, "failed": 12, "setup_ms": {"p95": 21.0},
        "audio": {"loss_pct": 0.0, "jitter_ms_p95": 9.5}, "cpu_ms_per_call": {"engine": 190.4, "generator": 61.2},
        "shed": {"turns": 12, "max_lag_s": 2.84}, "engine_peak_rss_mb": 1450.0,
    }
    assert row("base", "ivr", 10.0, report) == (
        "| base | ivr | 10 | 300 | 300 | 288 (96%) | 12 (2.8) | 21 | 0.000 % heard by callers | 9.5 | 1450 "
        "| 190 / 61 |")
