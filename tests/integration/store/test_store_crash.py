"""kill -9 while writing: everything committed survives; calls left running are marked interrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.journey import Outcome
from ivr.store import CallQuery, SqliteStore

pytestmark = pytest.mark.integration
CHILD = Path(__file__).with_name("crash_child.py")


def _line(proc: subprocess.Popen[str], tag: str) -> list[str]:
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line and line[0] == tag, f"child said {line!r} (expected {tag})"
    return line[1:]


def test_kill_9_loses_nothing_committed_and_interrupts_calls_in_progress(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), "200", "7"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        live = _line(proc, "inprogress")
        finished = _line(proc, "committed")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    store = SqliteStore(db)
    try:
        assert store.recovered >= len(live)
        for call_id in finished:
            detail = store.get_call(call_id)
            assert detail is not None, f"finished call {call_id} lost"
            assert detail.record.outcome is Outcome.SELF_SERVED
            assert len(detail.journey) == 2
        for call_id in live:
            detail = store.get_call(call_id)
            assert detail is not None
            assert detail.record.outcome is Outcome.INTERRUPTED
            assert [e.seq for e in detail.journey] == [0, 1, 2]
            assert detail.journey[2].breakpoint and detail.journey[2].data == {"said": "第2步"}
            assert detail.record.breakpoint_node == "node2"
        assert store.list_calls(CallQuery(in_progress=True)).records == []
    finally:
        store.close()
