"""Issue 16, draining is visible to load balancers: after SIGTERM, while a call finishes, a SIPp OPTIONS
probe gets 503 (Retry-After) and `/readyz` 503 `draining`, where both said 200 before; `/healthz`
stays 200 (alive)."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import urllib.error
import urllib.request

import pytest

from ivr.testing.caller import Pause, TestCaller
from tests.integration.edge.conftest import SCENARIOS, edge_engine
from tests.integration.engine.agents import wait_for_log
from tests.integration.engine.conftest import RunningEngine, assert_engine_healthy, free_port
from tests.integration.protocol.conftest import KEYS_NUMBER
from tests.integration.protocol.peer import PeerRun, run_scenario
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]


async def probe(engine: RunningEngine, tmp: pathlib.Path, status: int) -> PeerRun:
    scenario = tmp / f"options-{status}-{free_port()}.xml"
    scenario.write_text((SCENARIOS / "options.xml").read_text().replace("__STATUS__", str(status)))
    return await run_scenario(scenario, engine.sip_port, tmp)


def http_status(engine: RunningEngine, path: str) -> int:
    try:
        with urllib.request.urlopen(engine.api + path, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_draining_answers_options_and_readyz_with_503(tmp_path: pathlib.Path) -> None:
    with edge_engine(tmp_path, drain_timeout_s=30) as engine:
        before = await probe(engine, tmp_path, 200)
        assert before.returncode == 0, before.explain()
        assert await asyncio.to_thread(http_status, engine, "/readyz") == 200
        caller = await TestCaller.open(rtp_ports=(47400, 47498))
        try:
            uri = f"sip:{KEYS_NUMBER}@127.0.0.1:{engine.sip_port}"
            in_progress = asyncio.create_task(caller.call(uri, [Pause(6.0)], from_number="5550199", linger_s=0.0))
            await wait_for_log(engine, "rtp_session_started", 15.0)
            engine.process.send_signal(signal.SIGTERM)
            await wait_for_log(engine, "engine_draining", 10.0)
            during = await probe(engine, tmp_path, 503)
            assert during.returncode == 0, during.explain()
            refusal = during.received("SIP/2.0 503")[0].text
            assert "Retry-After:" in refusal, refusal
            assert await asyncio.to_thread(http_status, engine, "/readyz") == 503
            assert await asyncio.to_thread(http_status, engine, "/healthz") == 200
            finished = await in_progress
            assert finished.answered and finished.hangup_by == "caller", finished.timeline
            assert await asyncio.to_thread(engine.process.wait, 30) == 0
            assert_engine_healthy(engine)  # exit 0, no error line in its log
        finally:
            await caller.close()
