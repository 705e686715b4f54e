"""A real `ivr serve` in a subprocess on free loopback ports, and a SIP test caller to phone it.

The engine is the program users run, with the repository's flows, dialects and prompts; only the
database is a fresh temporary file. One engine serves the whole module, as a hotline serves many calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from ivr.testing import peers, ports
from ivr.testing.caller import TestCaller

ROOT = pathlib.Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 120.0
API_TOKEN = "ivr_engine-tests-admin-token"
"""The admin API token every engine started here gets (`IVR_API_TOKEN`); tests send it."""

needs_tts = pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port no other test process is handed (see `ivr.testing.ports`)."""
    return ports.free_port(kind)


@dataclass
class RunningEngine:
    sip_port: int
    http_port: int
    db: pathlib.Path
    process: subprocess.Popen[bytes]
    log: pathlib.Path

    @property
    def uri(self) -> str:
        return f"sip:95519@127.0.0.1:{self.sip_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def token(self) -> str:
        return API_TOKEN

    @property
    def headers(self) -> dict[str, str]:
        """What a request to this engine's API carries (add `Content-Type: application/json` to a body)."""
        return {"Authorization": f"Bearer {API_TOKEN}"}

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.api + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def prompt_duration_s(self, prompt: str, dialect: str) -> float:
        """How long a prompt lasts, from the engine's own `prompt_played` log lines."""
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"prompt_played"' not in line:
                continue
            entry = json.loads(line)
            if entry.get("prompt") == prompt and entry.get("dialect") == dialect:
                return float(entry["duration_s"])
        raise AssertionError(f"prompt {prompt!r} in {dialect!r} was never played")

    def call_detail(self, call_id: str, *, attempts: int = 40) -> dict[str, Any]:
        """The finished record and journey of a call (committed by the engine as the call ends)."""
        quoted = urllib.parse.quote(call_id, safe="")
        for _ in range(attempts):
            try:
                detail = self.get(f"/api/calls/{quoted}")
            except urllib.error.HTTPError:
                detail = None
            if detail is not None and not detail.get("in_progress"):
                return dict(detail)
            time.sleep(0.25)
        raise AssertionError(f"no finished record for call {call_id}")


def start_engine(tmp: pathlib.Path, *extra: str, cwd: pathlib.Path = ROOT) -> RunningEngine:
    """`cwd`: the working directory, the site whose relative paths (`--flows flows`) the engine reads."""
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    log = tmp / "engine.log"
    # IVR_LOG_PII: tests match callers in logs.
    env = dict(os.environ, PYTHONUNBUFFERED="1", IVR_LOG_PII="true", IVR_API_TOKEN=API_TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--log-json", "serve", "--sip", f"127.0.0.1:{sip_port}",
         "--http", f"127.0.0.1:{http_port}", "--db", str(tmp / "ivr.db"), *extra],
        cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    engine = RunningEngine(sip_port, http_port, tmp / "ivr.db", process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ivr serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{engine.api}/readyz", timeout=1) as response:
                if response.status == 200:
                    return engine
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"ivr serve not ready in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def stop_engine(engine: RunningEngine, *, errors_expected: Sequence[str] = ()) -> int:
    """SIGTERM the engine and check that it was healthy: exit 0, and no traceback or error line in its
    log except those matching a pattern of `errors_expected` (a test that provokes errors says which).
    An engine that already exited (a test killed it) is not checked: that test judges it."""
    if engine.process.poll() is not None:
        return engine.process.returncode
    engine.process.send_signal(signal.SIGTERM)
    try:
        engine.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        engine.process.kill()
        engine.process.wait()
    assert_engine_healthy(engine, errors_expected)
    return engine.process.returncode


def engine_log_errors(log: pathlib.Path) -> list[str]:
    """The log lines that say something went wrong: a traceback, or an entry at level error or worse."""
    bad = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "Traceback" in line:
            bad.append(line)
            continue
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and str(entry.get("level", "")).lower() in ("error", "critical", "exception"):
                bad.append(line)
    return bad


def assert_engine_healthy(engine: RunningEngine, errors_expected: Sequence[str] = ()) -> None:
    code = engine.process.returncode
    assert code == 0, f"ivr serve exited with {code} after SIGTERM:\n{engine.log.read_text()[-3000:]}"
    unexpected = [line for line in engine_log_errors(engine.log)
                  if not any(re.search(pattern, line) for pattern in errors_expected)]
    assert not unexpected, f"ivr serve logged {len(unexpected)} error line(s):\n" + "\n".join(unexpected[:20])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engine_errors_expected(*patterns): the module's `engine` may log error lines matching these regexes",
    )
    config.addinivalue_line("markers", "engine_args(*args): more `ivr serve` arguments for the module's `engine`")


@pytest.fixture(scope="session", autouse=True)
def _api_token_for_clients() -> Iterator[None]:
    """In-process API clients (`ivr.testing.callcheck.fetch_record`) and `ivr call` subprocesses
    read the token from IVR_API_TOKEN, as a deployment's scripts do."""
    previous = os.environ.get("IVR_API_TOKEN")
    os.environ["IVR_API_TOKEN"] = API_TOKEN
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("IVR_API_TOKEN", None)
        else:
            os.environ["IVR_API_TOKEN"] = previous


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """One engine per module; at teardown it must exit 0 on SIGTERM with a clean log (a module whose tests
    provoke errors marks itself `pytestmark = pytest.mark.engine_errors_expected("pattern", ...)`; one that needs
    a setting, `pytest.mark.engine_args("--set", "KEY=VALUE")`)."""
    marker = request.node.get_closest_marker("engine_errors_expected")
    args = request.node.get_closest_marker("engine_args")
    running = start_engine(tmp_path_factory.mktemp("engine"), *(args.args if args else ()))
    try:
        yield running
    finally:
        stop_engine(running, errors_expected=marker.args if marker else ())


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    base = 42000 + (os.getpid() % 50) * 100  # keep parallel test runs off each other's RTP ports
    test_caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        yield test_caller
    finally:
        await test_caller.close()
