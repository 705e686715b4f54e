"""Redis (the cluster's shared ACD log, append-only) SIGKILLed and restarted while callers of all three
nodes wait in a queue: no caller is dropped from it. Each holds until it hangs up itself (a caller the
ACD lost would go down the flow's error path and get the engine's BYE, failing SIPp), and its record
says it left the queue by hanging up.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import time

import pytest

from ivr.testing import peers
from ivr.testing.redis_server import RedisServer
from tests.integration.cluster.cluster import Cluster, new_database, running_cluster, stored_calls
from tests.integration.engine.agents import AgentSpec, sipp_caller_scenario, write_engine_config
from tests.integration.engine.conftest import needs_tts
from tests.integration.protocol.peer import run_scenario
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    needs_tts,
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER)),
]

CALLERS = 6
HOLD_S = 35.0
"""From the key press: 5.2 s of `transfer_agent`, then waiting in queue `general` (no agent logged in)."""
REDIS_DOWN_S = 3.0


def waiting_in_general(cluster: Cluster) -> int:
    """Callers waiting in `general` over the cluster: each node's /api/queues counts the callers it holds."""
    return sum(q["waiting"] for n in cluster.survivors() for q in n.get("/api/queues")["queues"]
               if q["queue"] == "general")


async def until_waiting(cluster: Cluster, count: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await asyncio.to_thread(waiting_in_general, cluster)
        if seen == count or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)  # the queue view is polled: nothing to wait on over HTTP


async def test_callers_keep_their_place_across_a_redis_restart(tmp_path: pathlib.Path, postgres: str) -> None:
    write_engine_config(tmp_path, [AgentSpec("absent", {"general": 1})])  # never registers: nobody answers
    env = {"IVR_AGENTS_FILE": str(tmp_path / "agents.yaml"), "IVR_QUEUES_FILE": str(tmp_path / "queues.yaml")}
    db = new_database(postgres, f"redis_{os.getpid()}")
    redis = RedisServer(appendonly=True)
    redis.start()
    try:
        with running_cluster(tmp_path, db=db, redis_url=redis.url, extra_env=env) as cluster:
            scenario = sipp_caller_scenario(tmp_path, "13700000301", HOLD_S)
            callers = asyncio.create_task(run_scenario(
                scenario, cluster.proxy.port, tmp_path, service="95519", timeout_s=HOLD_S + 90,
                extra=["-m", str(CALLERS), "-r", "2", "-l", str(CALLERS)]))
            before = await until_waiting(cluster, CALLERS, 40.0)
            redis.kill()
            await asyncio.sleep(REDIS_DOWN_S)  # Redis is down this long, then back with its AOF
            redis.start()
            after = await until_waiting(cluster, CALLERS, 40.0)
            run = await callers
            stored = stored_calls(db)
    finally:
        redis.close()

    assert before == CALLERS and after == CALLERS, (before, after)
    assert run.returncode == 0, run.explain()  # every caller hung up itself: none was dropped
    assert len(stored) == CALLERS
    assert {node for node, _, _ in stored.values()} == {"node-1", "node-2", "node-3"}
    assert {outcome for _, outcome, _ in stored.values()} == {"abandoned"}, stored
