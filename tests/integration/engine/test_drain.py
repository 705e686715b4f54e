"""SIGTERM drains the engine: new calls get 503, the call in progress finishes, then exit 0."""

from __future__ import annotations

import asyncio
import pathlib
import signal

import pytest

from ivr.testing.caller import Pause, TestCaller
from tests.integration.engine.agents import wait_for_log
from tests.integration.engine.conftest import start_engine, stop_engine

pytestmark = pytest.mark.integration


async def test_sigterm_refuses_new_calls_and_lets_the_current_one_finish(tmp_path: pathlib.Path) -> None:
    engine = start_engine(tmp_path)
    first = await TestCaller.open(rtp_ports=(47000, 47098))
    second = await TestCaller.open(rtp_ports=(47100, 47198))
    try:
        in_progress = asyncio.create_task(
            first.call(engine.uri, [Pause(6.0)], from_number="13700000301", linger_s=0.0)
        )
        for _ in range(100):  # until the engine has answered the first call
            if engine.get("/api/calls?limit=5").get("calls"):
                break
            await asyncio.sleep(0.1)
        engine.process.send_signal(signal.SIGTERM)
        await wait_for_log(engine, "engine_draining", 10.0)
        refused = await second.call(engine.uri, [], from_number="13700000302", linger_s=0.0)
        assert refused.status == 503
        finished = await in_progress
        assert finished.answered and finished.hangup_by == "caller", finished.timeline
        assert await asyncio.to_thread(engine.process.wait, 30) == 0
    finally:
        await first.close()
        await second.close()
        stop_engine(engine)
