"""A real `ivr serve` in a subprocess on free loopback ports, and a SIP test caller to phone it.

The engine is the program users run, with the repository's flows, dialects and prompts; only the
database is a fresh temporary file. One engine serves the whole module, as a hotline serves many calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ivr.testing.caller import TestCaller

ROOT = pathlib.Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 120.0

needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt install espeak-ng)"
)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=5) as response:
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


def start_engine(tmp: pathlib.Path, *extra: str) -> RunningEngine:
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    log = tmp / "engine.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--log-json", "serve", "--sip", f"127.0.0.1:{sip_port}",
         "--http", f"127.0.0.1:{http_port}", "--db", str(tmp / "ivr.db"), *extra],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    engine = RunningEngine(sip_port, http_port, tmp / "ivr.db", process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ivr serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{engine.api}/healthz", timeout=1) as response:
                if response.status == 200:
                    return engine
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"ivr serve not ready in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def stop_engine(engine: RunningEngine) -> int:
    if engine.process.poll() is None:
        engine.process.send_signal(signal.SIGTERM)
        try:
            engine.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.process.kill()
            engine.process.wait()
    return engine.process.returncode


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path_factory.mktemp("engine"))
    try:
        yield running
    finally:
        stop_engine(running)


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    base = 42000 + (os.getpid() % 50) * 100  # keep parallel test runs off each other's RTP ports
    test_caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        yield test_caller
    finally:
        await test_caller.close()
