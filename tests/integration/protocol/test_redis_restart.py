"""redis-server killed (SIGKILL, as a crash) and started again while callers wait in a queue.

The engine runs its ACD on Redis (append-only file, fsync always, as a cluster would). Two callers
queue; Redis dies; the engine notices; Redis comes back on the same port; then an agent logs in. The
callers must still be there, in their order: the agent's phone (SIPp) is offered the first caller, with
that caller's X-IVR-Call-ID, and the call is bridged.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from ivr.testing import peers
from ivr.testing.caller import Pause, TestCaller
from ivr.testing.redis_server import running_redis_server
from tests.integration.engine.agents import AgentSpec, wait_for_log
from tests.integration.engine.conftest import stop_engine
from tests.integration.protocol.conftest import QUEUE_NUMBERS, engine_for_protocols, uri
from tests.integration.protocol.peer import sipp_agent
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    pytest.mark.skipif(peers.REDIS_SERVER.missing, reason=peers.REDIS_SERVER.reason),
]

AGENT = AgentSpec("p-redis", {"claims": 2})
CALLERS = ("13700000821", "13700000822")
OUTAGE_ERRORS = (r"acd_", r"[Rr]edis", r"Connection refused", r"ConnectionError")
"""What the engine may log at error level while its store is down (it says so; the callers stay)."""


async def test_callers_queued_across_a_redis_restart_are_served_in_order(caller: TestCaller,
                                                                         tmp_path: pathlib.Path) -> None:
    with running_redis_server(appendonly=True) as redis:
        engine = await asyncio.to_thread(engine_for_protocols, tmp_path / "engine", [AGENT], acd_backend="redis",
                                         redis_url=redis.url, node_id="n1")
        calls: list[asyncio.Task[object]] = []
        try:
            for count, number in enumerate(CALLERS, start=1):  # one at a time: their order in the queue is known
                calls.append(asyncio.create_task(caller.call(
                    uri(engine, QUEUE_NUMBERS["claims"]), [Pause(1.0)] * 90, from_number=number, linger_s=0.0,
                    max_duration_s=100.0)))
                queued = await wait_for_log(engine, "call_enqueued", 30.0, count=count)
            first_call_id = str(queued[0]["call_id"])
            await asyncio.to_thread(redis.kill)
            await wait_for_log(engine, "acd_store_unreachable", 20.0)
            await asyncio.to_thread(redis.start)
            await wait_for_log(engine, "acd_store_back", 30.0)
            async with sipp_agent(tmp_path, AGENT.agent_id, AGENT.password, engine.sip_port, "uas_agent_answers.xml",
                                  values={"bye_timeout_ms": 30000}) as agent:
                bridged = (await wait_for_log(engine, "call_bridged", 30.0, agent=AGENT.agent_id))[0]
                for leg in caller.ua.legs:  # every caller hangs up: the agent's call ends with the engine's BYE
                    await leg.bye()
                run = await asyncio.wait_for(agent.finished, 40)
            await asyncio.wait_for(asyncio.gather(*calls), 20)
        finally:
            for task in calls:
                task.cancel()
            await asyncio.to_thread(stop_engine, engine, errors_expected=OUTAGE_ERRORS)
    assert run.returncode == 0, run.explain()
    assert bridged["call_id"] == first_call_id, "the first caller in the queue is served first"
    (invite,) = run.received("INVITE")
    assert invite.header("X-IVR-Call-ID") == first_call_id
