"""A real `ivr serve` with no token configured, as after `make run`: at its first start it writes an
admin token to var/api-token (0600) and says where; the API refuses requests without it, answers with
it, refuses a text/plain dispatch and a foreign Host; a restart keeps the same token. And /readyz
turns 503 while SIGTERM drains, /healthz still alive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.testing.caller import Pause, TestCaller
from tests.integration.engine.agents import wait_for_log
from tests.integration.engine.conftest import ROOT, free_port, needs_tts, start_engine, stop_engine

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT_S = 120.0


@dataclass
class Served:
    api: str
    sip_uri: str
    log: Path


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, str]:  # fmt: skip
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def without_token_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "IVR_API_TOKEN"}


@contextmanager
def ivr_serve(site: Path) -> Iterator[Served]:
    """`ivr serve` run from `site` (its var/ goes there), without IVR_API_TOKEN; stopped by SIGTERM."""
    http, sip = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    log = site / f"engine-{http}.log"
    # The repository's prompt cache (what every other engine of the suite uses): a new site would
    # otherwise render every hotline prompt in every dialect before it is ready, which is not what
    # these tests are about (tests/integration/voice and deploy build a site's cache from nothing).
    env = without_token_env() | {"PYTHONUNBUFFERED": "1", "IVR_PROMPT_CACHE_DIR": str(ROOT / "var" / "prompt-cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--log-json", "serve", "--sip", f"127.0.0.1:{sip}",
         "--http", f"127.0.0.1:{http}", "--db", str(site / "ivr.db")],
        cwd=site, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    served = Served(f"http://127.0.0.1:{http}", f"sip:95519@127.0.0.1:{sip}", log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _ready(served.api):
            if process.poll() is not None:
                raise AssertionError(f"ivr serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"ivr serve not ready in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(api: str) -> bool:
    try:
        return request(api + "/readyz")[0] == 200
    except OSError:  # not listening yet
        return False


def log_events(log: Path, event: str) -> list[dict[str, object]]:
    entries = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if f'"{event}"' in line:
            entries.append(json.loads(line))
    return entries


@needs_tts
def test_ivr_call_finds_the_first_start_token_with_no_extra_step(tmp_path: Path) -> None:
    """The README's `ivr call ... --expect-queue`, run where `ivr serve` runs: the record is fetched
    with the token from var/api-token."""
    with ivr_serve(tmp_path) as served, ThreadPoolExecutor(2) as testers:  # both testers call at once
        running = testers.submit(
            subprocess.run,
            [sys.executable, "-m", "ivr.cli", "call", served.sip_uri, "--api", served.api, "--from", "13700000502",
             "--keys", "0", "--expect-queue", "general", "--wait", "20"],  # 15 s to the queue at night
            cwd=tmp_path, env=without_token_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        stranger = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "call", served.sip_uri, "--api", served.api, "--from", "13700000503",
             "--expect-queue", "general", "--wait", "1"],  # the record's fetch is what is judged here
            cwd=tmp_path / "var", env=without_token_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        result = running.result()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASS" in result.stdout and "queue=general" in result.stdout
        assert stranger.returncode == 1  # elsewhere there is no var/api-token: the record is refused
        assert "HTTP 401" in stranger.stdout and "set IVR_API_TOKEN" in stranger.stdout


def options_probe(sip_uri: str) -> str:
    """Send one out-of-dialog OPTIONS (what a load balancer probes with) over UDP; the answer's status line."""
    host, port = sip_uri.split("@")[1].split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        me = sock.getsockname()[1]
        sock.sendto((
            f"OPTIONS {sip_uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-probe1;rport\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <{sip_uri}>\r\nCall-ID: probe1@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode(), (host, int(port)))  # fmt: skip
        return sock.recv(65535).decode().split("\r\n")[0]


def test_first_start_token_guards_the_api_and_survives_a_restart(tmp_path: Path) -> None:
    token_file = tmp_path / "var" / "api-token"
    with ivr_serve(tmp_path) as served:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        (created,) = log_events(served.log, "api_token_created")
        assert created["path"] == str(token_file) and token not in served.log.read_text()
        auth = {"Authorization": f"Bearer {token}"}

        assert request(served.api + "/healthz") == (200, '{"status": "alive"}')
        for path in ("/api/calls", "/api/reports/summary", "/metrics", "/api/events"):
            assert request(served.api + path)[0] == 401, path
        assert request(served.api + "/api/calls", headers={"Authorization": "Bearer nope"})[0] == 401
        status, body = request(served.api + "/api/calls", headers=auth)
        assert status == 200 and json.loads(body)["calls"] == []
        assert options_probe(served.sip_uri).startswith("SIP/2.0 200")
        status, body = request(served.api + "/metrics", headers=auth)
        assert status == 200 and "ivr_calls_active" in body
        # The SIP endpoint's, edge's, registrar's and media engine's own totals, read at the scrape.
        lines = body.splitlines()
        assert 'ivr_sip_requests_total{method="OPTIONS",direction="in"} 1' in lines
        assert 'ivr_sip_responses_total{method="OPTIONS",code="200",direction="out"} 1' in lines
        assert 'ivr_sip_edge_refused_total{reason="rate_limited"} 0' in lines
        assert 'ivr_rtp_dropped_total{reason="wrong_source"} 0' in lines and "ivr_rtp_send_errors_total 0" in lines
        assert json.loads(request(served.api + "/api/whoami", headers=auth)[1]) == {"name": "local", "role": "admin"}

        dispatch = json.dumps({"region": "south", "helper_sites": ["beijing"]}).encode()
        plain = request(served.api + "/api/dispatch", method="POST", data=dispatch,
                        headers=auth | {"Content-Type": "text/plain"})  # fmt: skip
        assert plain[0] == 415
        assert request(served.api + "/api/calls", headers=auth | {"Host": "rebound.example:8080"})[0] == 421
        logged = [(e["path"], e["status"], e["token"]) for e in log_events(served.log, "http_request")]
        assert ("/api/calls", 200, "local") in logged and ("/api/calls", 401, None) in logged

    with ivr_serve(tmp_path) as again:
        assert token_file.read_text().strip() == token
        assert log_events(again.log, "api_token_reused")
        assert request(again.api + "/api/calls", headers=auth)[0] == 200


async def test_readyz_turns_503_while_a_sigterm_drains_and_healthz_stays_alive(tmp_path: Path) -> None:
    """What a load balancer sees: not ready as soon as draining starts (the call in progress goes on)."""
    engine = start_engine(tmp_path)
    caller = await TestCaller.open(rtp_ports=(47400, 47498))
    try:
        assert request(engine.api + "/readyz") == (200, '{"status": "ready"}')
        in_progress = asyncio.create_task(
            caller.call(engine.uri, [Pause(6.0)], from_number="13700000501", linger_s=0.0)
        )
        for _ in range(100):  # until the engine has answered the call
            if engine.get("/api/calls?limit=5").get("calls"):
                break
            await asyncio.sleep(0.1)
        engine.process.send_signal(signal.SIGTERM)
        await wait_for_log(engine, "engine_draining", 10.0)
        assert request(engine.api + "/readyz") == (503, '{"status": "draining"}')
        assert request(engine.api + "/healthz") == (200, '{"status": "alive"}')
        finished = await in_progress
        assert finished.answered and finished.hangup_by == "caller", finished.timeline
    finally:
        await caller.close()
        stop_engine(engine)
