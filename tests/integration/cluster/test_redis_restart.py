"""Redis (the cluster's shared ACD log, append-only) SIGKILLed and restarted under load, while callers of
all three nodes wait in a queue (issue 18, Done when, 2nd line): no caller is dropped from the queue.

The load: SIPp at 20 calls/s with media through Kamailio (the hotline's prompt, no queue). The queued
callers dial AGENT_LINE (straight into queue `general`, where no agent is logged in) and hold until they
hang up themselves; a caller the ACD lost would go down the flow's error path and get the engine's BYE,
failing SIPp. Each queued caller's record says it left the queue by hanging up (`abandoned`).
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import time

import pytest

from ivr.testing import peers
from ivr.testing.redis_server import RedisServer
from tests.integration.cluster.cluster import (
    AGENT_LINE,
    CLUSTER_TIMEOUT_S,
    Cluster,
    new_database,
    running_cluster,
    start_callers,
    stored_once_closed,
    write_flows,
)
from tests.integration.engine.agents import AgentSpec, write_engine_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(CLUSTER_TIMEOUT_S),  # it may wait for another cluster test's turn
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.SIPP, peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER, peers.ESPEAK_NG)),
]

CALLERS = 6
HOLD_S = 40.0
"""The queued callers' hold: they wait in `general` (nobody answers) until they hang up."""
RATE = 20.0
LOAD_S = 30.0
LOAD_HOLD_S = 4.0
LOAD_BEFORE_KILL_S = 5.0
REDIS_DOWN_S = 3.0
WAIT_S = 40.0
"""How long callers may take to show up in the queue: the engines answer under the load."""


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


async def test_callers_keep_their_place_across_a_redis_restart_under_load(
    tmp_path: pathlib.Path, postgres: str
) -> None:
    write_engine_config(tmp_path, [AgentSpec("absent", {"general": 1})])  # never registers: nobody answers
    env = {"IVR_AGENTS_FILE": str(tmp_path / "agents.yaml"), "IVR_QUEUES_FILE": str(tmp_path / "queues.yaml")}
    db = new_database(postgres, f"redis_{os.getpid()}")
    redis = RedisServer(appendonly=True)
    redis.start()
    try:
        with running_cluster(tmp_path, db=db, redis_url=redis.url, flows_dir=write_flows(tmp_path),
                             extra_env=env) as cluster:
            target = f"127.0.0.1:{cluster.proxy.port}"
            # The queued callers first, alone: the proxy's round robin puts two on each node.
            queued = start_callers(tmp_path / "sipp-queued", target, rate=2, calls=CALLERS, hold_s=HOLD_S,
                                   service=AGENT_LINE)
            before = await until_waiting(cluster, CALLERS, WAIT_S)
            load = start_callers(tmp_path / "sipp", target, rate=RATE, calls=int(RATE * LOAD_S), hold_s=LOAD_HOLD_S)
            await asyncio.sleep(LOAD_BEFORE_KILL_S)  # the scenario: the load builds up, then Redis dies
            redis.kill()
            await asyncio.sleep(REDIS_DOWN_S)  # the scenario: Redis is down this long, then back with its AOF
            redis.start()
            after = await until_waiting(cluster, CALLERS, WAIT_S)
            await asyncio.to_thread(load.wait, LOAD_S + LOAD_HOLD_S + 120)
            await asyncio.to_thread(queued.wait, HOLD_S + 120)
            stored = await asyncio.to_thread(stored_once_closed, db, 20.0)
            noticed = {n.node_id: n.log.read_text(errors="replace").count('"acd_store_unreachable"')
                       for n in cluster.nodes}
    finally:
        redis.close()
    explain = f"{queued.output()[-2000:]}\n{load.output()[-1500:]}"

    assert before == CALLERS and after == CALLERS, (before, after)
    queued_ids = set(queued.starts())
    assert len(queued_ids) == CALLERS and queued.succeeded() == queued_ids, explain  # each hung up itself
    assert {stored[c][1] for c in queued_ids} == {"abandoned"}, {c: stored[c] for c in queued_ids}
    assert {stored[c][0] for c in queued_ids} == {"node-1", "node-2", "node-3"}
    assert set(load.starts()) == load.succeeded(), explain  # the load went on through the outage
    assert not any(live for _, _, live in stored.values())
    assert all(noticed.values()), noticed  # every node lost Redis for a while, under the load
    print(f"\nredis restart: {CALLERS} callers waiting in 3 nodes, {len(load.starts())} calls at {RATE}/s around "
          f"a {REDIS_DOWN_S} s outage: none dropped; outage noticed by {noticed}")
