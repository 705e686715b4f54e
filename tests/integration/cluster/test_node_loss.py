"""Issue 18's "Done when", as written: Kamailio (deploy/kamailio/cluster.cfg) in front of three engine
nodes on 127.0.0.2-4, one PostgreSQL, one Redis, all on loopback; SIPp sends 20 calls/s with media
through Kamailio for 60 s; one node is SIGKILLed 20 s in: the one that took the agent's registration,
the hardest case for the agent.

What must hold:
- the calls lost are exactly the calls that were on the dead node at the kill (a survivor closes their
  records as `interrupted` once the node's ACD lease expires); every other call ends well, in particular
  every call that started after the kill plus the dispatcher's detection time (3 s);
- a baresip agent, behind a NAT and registered once through Kamailio, is rung by every node through
  Kamailio by the Path it registered with (one caller from each node before the load; every INVITE it
  gets comes in through its NAT, none to its Contact), and keeps receiving callers from the surviving
  nodes: during the load once the dead node's lease has freed it, and after the load one from each
  survivor in turn;
- `/api/calls` on a survivor lists the calls of all three nodes, each labelled with its node.

It runs about 2.5 minutes (cluster start ~20 s, three agent calls, the 60 s load, two agent calls). CLUSTER_RATE,
CLUSTER_SECONDS and CLUSTER_KILL_AT change the load for a trial run; the suite runs the issue's figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import time

import pytest

from ivr.testing import peers
from tests.integration.cluster.cluster import (
    AGENT_LINE,
    CLUSTER_TIMEOUT_S,
    CallerRun,
    Cluster,
    Node,
    new_database,
    running_cluster,
    start_callers,
    stored_once_closed,
    write_flows,
)
from tests.integration.cluster.nat import running_nat
from tests.integration.engine.agents import AgentSpec, baresip_agent, write_engine_config
from tests.integration.sip.sip_peers import needs_baresip

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(CLUSTER_TIMEOUT_S),  # ~2 min alone, and it may wait for another cluster test's turn
    needs_baresip,
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.SIPP, peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER, peers.ESPEAK_NG)),
]

RATE = float(os.environ.get("CLUSTER_RATE", "20"))
SECONDS = float(os.environ.get("CLUSTER_SECONDS", "60"))
KILL_AT_S = float(os.environ.get("CLUSTER_KILL_AT", "20"))
HOLD_S = 4.0
DETECTION_S = 3.0
"""The dispatcher's promise: a probe every second, unanswered after 2 s (cluster.cfg NO_ANSWER_MS)."""
LEASE_S = 15.0
"""config/queues.yaml `cluster: lease_s`: after it a survivor closes the dead node's records and frees
the agents it had bridged."""
RECORD_WINDOW_S = 2.0
"""How long before the kill a call may have ended and still lack its final record on the dead node."""
AGENT = AgentSpec("c1", {"general": 1})
AGENT_RATE = 0.5
"""Callers for the agent (AGENT_LINE: straight into queue `general`) alongside the load."""
AGENT_HOLD_S = 6.0


def bridged_on(node: Node) -> list[str]:
    """Call-IDs of the calls `node` bridged to an agent (its `call_bridged` log lines), in order."""
    return [str(json.loads(line).get("call_id")) for line in node.log.read_text(errors="replace").splitlines()
            if '"call_bridged"' in line]


def registered_on(cluster: Cluster) -> Node:
    """The node whose registrar took the agent's REGISTER (the proxy's log says where it sent it)."""
    for line in cluster.proxy.output().splitlines():
        if "REGISTER" in line and "to engine sip:" in line:
            target = line.rsplit("to engine sip:", 1)[1].strip()
            return next(n for n in cluster.nodes if f"{n.host}:{n.sip_port}" == target)
    raise AssertionError(f"no REGISTER relayed:\n{cluster.proxy.output()[-3000:]}")


async def one_agent_caller(folder: pathlib.Path, target: str) -> CallerRun:
    """One caller to the agent, through the proxy, waited for."""
    run = start_callers(folder, target, rate=1, calls=1, hold_s=AGENT_HOLD_S, service=AGENT_LINE)
    await asyncio.to_thread(run.wait, AGENT_HOLD_S + 60)
    return run


async def test_killing_a_node_loses_only_its_calls_in_progress(
    tmp_path: pathlib.Path, postgres: str, redis_url: str
) -> None:
    write_engine_config(tmp_path, [AGENT])
    env = {"IVR_AGENTS_FILE": str(tmp_path / "agents.yaml"), "IVR_QUEUES_FILE": str(tmp_path / "queues.yaml")}
    db = new_database(postgres, f"cluster_{os.getpid()}")
    calls = int(RATE * SECONDS)
    with running_cluster(tmp_path, db=db, redis_url=redis_url, flows_dir=write_flows(tmp_path),
                         extra_env=env) as cluster:
        target = f"127.0.0.1:{cluster.proxy.port}"
        async with running_nat(("127.0.0.1", cluster.proxy.port)) as nat, \
                baresip_agent(tmp_path, AGENT, nat.inside[1], quit_after_s=600) as agent:
            await agent.expect(rf"{AGENT.agent_id}@.*200 OK", 15.0)
            victim = registered_on(cluster)
            survivors = [n for n in cluster.nodes if n is not victim]
            # Nothing else calls yet: three callers in a row take the round robin to the three nodes.
            first = [await one_agent_caller(tmp_path / f"sipp-first-{n}", target) for n in range(3)]
            load = start_callers(tmp_path / "sipp", target, rate=RATE, calls=calls, hold_s=HOLD_S)
            to_agent = start_callers(tmp_path / "sipp-agent", target, rate=AGENT_RATE,
                                     calls=int(AGENT_RATE * SECONDS), hold_s=AGENT_HOLD_S, service=AGENT_LINE)
            await asyncio.sleep(KILL_AT_S)  # the scenario: calls on every node, then the kill
            killed_at = time.time()
            victim.kill()
            detected_at = await asyncio.to_thread(
                cluster.proxy.wait_for, f"engine down: sip:{victim.host}:{victim.sip_port}", 10.0)
            await asyncio.to_thread(load.wait, SECONDS + HOLD_S + 120)
            await asyncio.to_thread(to_agent.wait, SECONDS + AGENT_HOLD_S + 120)
            # The load is over: two callers in a row take the dispatcher's round robin to both survivors.
            last = [await one_agent_caller(tmp_path / f"sipp-last-{n}", target) for n in range(2)]
            stored = await asyncio.to_thread(stored_once_closed, db, LEASE_S + 20)
            listed = await asyncio.to_thread(survivors[0].calls)  # a survivor's /api/calls
            bridged = {n.node_id: bridged_on(n) for n in cluster.nodes}
            invites, through_nat = len(agent.invites()), nat.invites_in
        states = {n.node_id: n.process.poll() for n in cluster.nodes}
        proxy_log = cluster.proxy.output()
    runs = [*first, load, to_agent, *last]
    explain = "\n".join(r.output()[-1500:] for r in runs) + f"\n--- kamailio:\n{proxy_log[-2500:]}"

    assert states == {n.node_id: -9 if n is victim else None for n in cluster.nodes}, "a survivor died"
    assert detected_at - killed_at <= DETECTION_S, detected_at - killed_at
    starts = {c: t for r in runs for c, t in r.starts().items()}
    ok = set().union(*(r.succeeded() for r in runs))
    assert len(load.starts()) == calls, explain
    failed = set(starts) - ok
    on_victim = {c for c, (node, _, _) in stored.items() if node == victim.node_id}
    # A caller whose INVITE reached the dead node in its last moment, before it wrote anything: no survivor
    # ever had the call (every survivor's calls are in `stored`), so it was the dead node's too. Seen in
    # full-suite runs: the agent line's 11th caller starts exactly at the kill (0.5 calls/s, kill at 20 s).
    unrecorded = {c for c in failed - on_victim
                  if c not in stored and killed_at - RECORD_WINDOW_S < starts[c] < killed_at + 0.5}
    # Calls lost = the calls that were on the dead node at the kill, and nothing else.
    lost = failed - unrecorded
    assert lost <= on_victim, f"calls failed that were not on the killed node: {sorted(lost - on_victim)}"
    interrupted = {c for c in on_victim if stored[c][1] == "interrupted"}
    assert lost <= interrupted, (sorted(lost - interrupted), {c: stored[c] for c in sorted(lost - interrupted)[:5]},
                                 said_of_lost_nodes(survivors), explain)
    # A call the caller ended just before the kill may not have reached the dead node's record writer
    # (it commits every 20 ms, slower under load): its record is closed `interrupted` by the survivor too.
    ends = {c: t for r in runs for c, t in r.ends().items()}
    assert all(killed_at - RECORD_WINDOW_S < ends[c] < killed_at + 0.5 for c in interrupted - failed), \
        {c: ends[c] - killed_at for c in interrupted - failed}
    assert all(starts[c] < killed_at + 0.5 for c in failed)
    after = [c for c, t in starts.items() if t > killed_at + DETECTION_S]
    assert after and all(c in ok for c in after), explain
    assert {node for node, _, _ in stored.values()} == {"node-1", "node-2", "node-3"}
    assert not any(live for _, _, live in stored.values()), "a call was left in progress"

    # The agent: one caller bridged by each node before the load; callers bridged by the survivors after
    # the kill, during the load and one each after it; every INVITE through its NAT.
    first_ids = [next(iter(r.starts())) for r in first]
    assert all(r.succeeded() == set(r.starts()) for r in first), explain
    assert sorted(n for n, calls in bridged.items() for c in calls if c in first_ids) == ["node-1", "node-2", "node-3"]
    after_kill = {c for c, t in to_agent.starts().items() if t > killed_at}
    assert any(c in after_kill for n in survivors for c in bridged[n.node_id]), bridged
    last_ids = [next(iter(r.starts())) for r in last]
    assert all(r.succeeded() == set(r.starts()) for r in last), explain
    assert {n.node_id for n in survivors for c in bridged[n.node_id] if c in last_ids} == {n.node_id for n in survivors}
    assert through_nat == invites, "a node rang the agent's Contact instead of its Path"

    # /api/calls on a survivor: every node's calls, each labelled with the node that took it.
    by_api = {c["call_id"]: c for c in listed}
    assert set(by_api) == set(stored)
    assert {c["node_id"] for c in listed} == {"node-1", "node-2", "node-3"}
    assert all(entry["node_id"] == stored[call_id][0] for call_id, entry in by_api.items())

    agent_calls = sum(len(b) for b in bridged.values())
    print(f"\ncluster: {calls} calls at {RATE}/s for {SECONDS} s, {victim.node_id} (the agent's registrar) "
          f"killed at {KILL_AT_S} s, engine down {detected_at - killed_at:.2f} s later; lost {len(failed)} "
          f"({len(unrecorded)} reached it too late to be recorded; records closed `interrupted`: {len(interrupted)}, "
          f"{len(interrupted - failed)} of calls ended just before the kill); "
          f"after kill+{DETECTION_S} s: {len(after)} calls, all ok; agent (behind NAT) bridged {agent_calls} "
          f"callers, {invites} INVITEs all through its NAT")


def said_of_lost_nodes(survivors: list[Node]) -> list[str]:
    """What the survivors logged about a lost node and the calls they closed for it (a failure's clue)."""
    return [line[:300] for n in survivors for line in n.log.read_text(errors="replace").splitlines()
            if "node_lost" in line or "calls_interrupted" in line or "lease" in line][:40]
