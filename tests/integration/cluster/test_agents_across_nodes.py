"""An agent registers once, through Kamailio, and is offered callers from every engine node of the
cluster, before and after the node that took its registration is killed (issue 18, docs/CLUSTER.md
"Agents").

The REGISTER reaches one node (the proxy hashes the agent's AOR); that node logs the agent into the
ACD, whose log every node shares in Redis, with the phone's contact. Callers reach any node (round
robin); whichever node has the caller offers it to the agent. After the registering node is killed,
the agent is still logged in on the shared ACD and the survivors keep offering it callers.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib

import pytest

from ivr.testing import peers
from tests.integration.cluster.cluster import Cluster, Node, new_database, running_cluster
from tests.integration.engine.agents import AgentSpec, baresip_agent, sipp_caller_scenario, write_engine_config
from tests.integration.engine.conftest import needs_tts
from tests.integration.protocol.peer import run_scenario
from tests.integration.sip.sip_peers import needs_baresip, needs_sipp

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    needs_baresip,
    needs_tts,
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER)),
]

AGENT = AgentSpec("c1", {"general": 2})
HOLD_S = 9.0
"""The demo hotline says `transfer_agent` (5.2 s) after key 0 before it queues the caller."""


def bridged_on(node: Node) -> list[str]:
    """Call-IDs of the calls `node` bridged to an agent (its `call_bridged` log lines)."""
    calls = []
    for line in node.log.read_text(errors="replace").splitlines():
        if '"call_bridged"' in line:
            calls.append(str(json.loads(line).get("call_id")))
    return calls


def registered_on(cluster: Cluster) -> Node:
    """The node whose registrar took the agent's REGISTER (the proxy's log says where it sent it)."""
    for line in cluster.proxy.output().splitlines():
        if "REGISTER" in line and "to engine sip:" in line:
            target = line.rsplit("to engine sip:", 1)[1].strip()
            return next(n for n in cluster.nodes if f"{n.host}:{n.sip_port}" == target)
    raise AssertionError(f"no REGISTER relayed:\n{cluster.proxy.output()[-3000:]}")


async def call_through(cluster: Cluster, tmp: pathlib.Path, caller: str) -> None:
    """One caller through the proxy who presses 0 (queue general) and hangs up HOLD_S after."""
    scenario = sipp_caller_scenario(tmp, caller, HOLD_S)
    run = await run_scenario(scenario, cluster.proxy.port, tmp, service="95519", timeout_s=60.0)
    assert run.returncode == 0, run.explain()


async def test_an_agent_registered_once_takes_callers_from_every_node_and_survives_its_node(
    tmp_path: pathlib.Path, postgres: str, redis_url: str
) -> None:
    config = write_engine_config(tmp_path, [AGENT])
    db = new_database(postgres, f"agents_{os.getpid()}")
    env = {"IVR_AGENTS_FILE": str(tmp_path / "agents.yaml"), "IVR_QUEUES_FILE": str(tmp_path / "queues.yaml")}
    assert config.exists()
    with running_cluster(tmp_path, db=db, redis_url=redis_url, extra_env=env) as cluster:
        async with baresip_agent(tmp_path, AGENT, cluster.proxy.port) as agent:
            await agent.expect(rf"{AGENT.agent_id}@.*200 OK", 15.0)
            home = registered_on(cluster)
            # Round robin: three callers in a row land on three different nodes.
            for n in range(3):
                await call_through(cluster, tmp_path, f"1370000100{n}")
            before = {node.node_id: bridged_on(node) for node in cluster.nodes}
            home.kill()
            await asyncio.sleep(4)  # the dispatcher's detection (probe each second, 2 s without answer)
            for n in range(3):
                await call_through(cluster, tmp_path, f"1370000200{n}")
            after = {node.node_id: bridged_on(node) for node in cluster.survivors()}
            invites = len(agent.invites())

    assert all(len(calls) == 1 for calls in before.values()), before  # each node offered the agent a caller
    assert sum(len(calls) for calls in after.values()) == 3 + sum(len(before[n]) for n in after), after
    assert invites == 6
