"""`ivr report`: read-only open, and the rendered tables carry the figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from rich.console import Console
from store_contract import T0, expected_summary, sample_calls, write_calls

from ivr.cli import main
from ivr.journey import CallRecord
from ivr.report import report_main
from ivr.store import MigrationError, SqliteStore, StoreClosed, open_store


def test_report_prints_the_figures_without_touching_running_calls(
    open_store: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    calls = sample_calls()
    engine = open_store()
    write_calls(engine, calls)  # the engine keeps running: two calls are in progress
    console = Console(record=True, width=140)
    until = T0 + timedelta(days=1)
    rc = report_main(
        T0.isoformat(), until.isoformat(), str(tmp_path / "calls.db"), now=until, console=console
    )
    assert rc == 0
    text = console.export_text()
    want = expected_summary(calls, T0, until)
    assert f"{100 * want['containment']:.1f}%" in text  # type: ignore[operator]
    assert f"{want['nps']:+.1f}" in text
    assert f"{100 * want['service_level']:.1f}%" in text  # type: ignore[operator]
    for heading in ("Intent mix", "Top breakpoints", "Calls by dialect", "claim_status", "ask_need", "hak"):
        assert heading in text
    running = [c.record.call_id for c in calls if not c.finished]
    for call_id in running:
        detail = engine.get_call(call_id)
        assert detail is not None and detail.in_progress, "a report must never mark live calls interrupted"


def test_read_only_store_refuses_writes(open_store: Callable[..., SqliteStore], tmp_path: Path) -> None:
    open_store().close()
    reader = open_store_ro(tmp_path / "calls.db")
    with pytest.raises(StoreClosed, match="read-only"):
        reader.call_started(CallRecord("c", "1", "2", T0))
    reader.close()


def open_store_ro(path: Path) -> SqliteStore:
    store = open_store(path, read_only=True)
    assert isinstance(store, SqliteStore)
    return store


def test_read_only_open_of_something_else_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"")
    with pytest.raises(MigrationError, match="not a call-record database"):
        open_store(path, read_only=True)


@pytest.mark.parametrize(
    ("argv", "rc", "message"),
    [
        (["--since", "yesterday"], 2, "bad time 'yesterday'"),
        (["--since", "1h", "--until", "2h"], 2, "must be after --since"),
    ],
)
def test_report_usage_errors(
    open_store: Callable[..., SqliteStore], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], rc: int, message: str,
) -> None:  # fmt: skip
    open_store().close()
    try:
        assert main(["report", "--db", str(tmp_path / "calls.db"), *argv]) == rc
    finally:
        structlog.reset_defaults()  # main() configured logging onto the captured stream
    assert message in capsys.readouterr().err
