"""`ivr serve --db postgresql://...`: a real call's record, journey and the caller's dialect land in
PostgreSQL (read back with `psql`, not through our own code), and an unreachable URL stops start-up
with exit 1 and a message naming the database, leaving no stray file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.testing import peers
from tests.integration.engine.conftest import API_TOKEN, ROOT, start_engine, stop_engine

pytestmark = pytest.mark.integration

CALLER = "13700009901"


def psql(url: str, sql: str) -> list[list[str]]:
    found = peers.POSTGRESQL.path
    program = str(Path(found) / "psql") if found and (Path(found) / "psql").exists() else shutil.which("psql")
    assert program, "psql not found beside initdb or on PATH"
    done = subprocess.run([program, url, "-X", "-tA", "-F", "|", "-c", sql], capture_output=True, text=True,
                          timeout=30, check=True)
    return [line.split("|") for line in done.stdout.splitlines() if line]


def test_a_real_calls_record_is_kept_in_postgresql(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_API_TOKEN", API_TOKEN)
    engine = start_engine(tmp_path, "--db", fresh_database)
    try:
        call = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "call", engine.uri, "--from", CALLER, "--wait", "8", "--api", ""],
            cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )
        assert call.returncode == 0, call.stdout + call.stderr
        assert "answered" in call.stdout.lower() or call.stdout, call.stdout
    finally:
        assert stop_engine(engine) == 0, engine.log.read_text()[-3000:]
    rows = psql(fresh_database, f"SELECT call_id, in_progress, flow_id FROM calls WHERE caller = '{CALLER}'")
    assert len(rows) == 1, rows
    call_id, in_progress, flow_id = rows[0]
    assert (in_progress, flow_id) == ("f", "hotline")
    events = psql(fresh_database, f"SELECT count(*) FROM journey_events WHERE call_id = '{call_id}'")
    assert int(events[0][0]) > 0
    assert not (tmp_path / "ivr.db").exists(), "the --db URL replaced the default file"
    assert not list(tmp_path.glob("postgresql*")), "a URL must never become a SQLite path"

    purge = subprocess.run([sys.executable, "-m", "ivr.cli", "purge", "--older-than", "0d", "--db", fresh_database],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert purge.returncode == 0 and "1 calls" in purge.stdout, purge.stdout + purge.stderr
    assert psql(fresh_database, f"SELECT count(*) FROM calls WHERE caller = '{CALLER}'") == [["0"]]
    assert psql(fresh_database, f"SELECT count(*) FROM journey_events WHERE call_id = '{call_id}'") == [["0"]]


def test_an_unreachable_database_stops_start_up_with_exit_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://ivr:s3cret@127.0.0.1:{port}/ivr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "--log-json", "serve", "--db", url, "--sip", "127.0.0.1:0",
         "--http", "127.0.0.1:0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"ivr serve: cannot connect to the database postgresql://ivr:***@127.0.0.1:{port}/ivr" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("postgresql*")) and not (tmp_path / "var" / "ivr.db").exists()
