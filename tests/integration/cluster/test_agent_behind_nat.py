"""An agent's phone behind NAT, registered through Kamailio (deploy/kamailio/cluster.cfg): the engine's
INVITE, ACK and BYE all reach it at the address its packets came from, never at the private Contact it
names (docs/CLUSTER.md "Agents").

The phone is SIPp behind a test NAT (tests/integration/cluster/nat.py) that forwards requests to the
phone's UAS; its Contact, in the REGISTER and in its 200, names a port where nothing listens. The INVITE
reaches it only by the `received` address in the registration's Path, the ACK and BYE only by the
`alias` Kamailio put on the Contact of its answer (nathelper): without either the call never completes.
"""

from __future__ import annotations

import asyncio
import os
import pathlib

import pytest

from ivr.testing import peers
from tests.integration.cluster.cluster import (
    AGENT_LINE,
    CLUSTER_TIMEOUT_S,
    free_port,
    new_database,
    running_cluster,
    start_callers,
    write_flows,
)
from tests.integration.cluster.nat import running_nat
from tests.integration.engine.agents import AgentSpec, write_engine_config
from tests.integration.protocol.peer import run_scenario, write_scenario

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(CLUSTER_TIMEOUT_S),  # it may wait for another cluster test's turn
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.SIPP, peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER, peers.ESPEAK_NG)),
]

AGENT = AgentSpec("c1", {"general": 1})
SCENARIO = pathlib.Path(__file__).resolve().parent / "scenarios" / "uas_agent_behind_nat.xml"
HOLD_S = 4.0


async def test_an_agent_behind_nat_is_reached_at_the_address_it_registered_from(
    tmp_path: pathlib.Path, postgres: str, redis_url: str
) -> None:
    write_engine_config(tmp_path, [AGENT])
    env = {"IVR_AGENTS_FILE": str(tmp_path / "agents.yaml"), "IVR_QUEUES_FILE": str(tmp_path / "queues.yaml")}
    db = new_database(postgres, f"nat_{os.getpid()}")
    phone = tmp_path / "phone"
    phone.mkdir()
    private_port, uas_port = free_port(), free_port()  # the Contact's port is claimed and never bound
    uas_file = phone / SCENARIO.name
    uas_file.write_text(SCENARIO.read_text().replace("__PRIVATE_PORT__", str(private_port)))
    with running_cluster(tmp_path, db=db, redis_url=redis_url, flows_dir=write_flows(tmp_path), extra_env=env,
                         nodes=1) as cluster:
        async with running_nat(("127.0.0.1", cluster.proxy.port), phone=("127.0.0.1", uas_port)) as nat:
            uas = asyncio.ensure_future(run_scenario(uas_file, 0, phone, service=AGENT.agent_id, uas=True,
                                                     local_port=uas_port, timeout_s=60.0))
            register = write_scenario("register_agent.xml", phone, {"contact_port": private_port})
            registration = await run_scenario(register, nat.inside[1], phone, service=AGENT.agent_id, timeout_s=15.0,
                                              extra=["-au", AGENT.agent_id, "-ap", AGENT.password])
            assert registration.returncode == 0, registration.explain()
            caller = start_callers(tmp_path / "caller", f"127.0.0.1:{cluster.proxy.port}", rate=1, calls=1,
                                   hold_s=HOLD_S, service=AGENT_LINE)
            await asyncio.to_thread(caller.wait, HOLD_S + 60)
            answered = await uas
            invites_in = nat.invites_in

    assert caller.succeeded() == set(caller.starts()), caller.output()[-2000:]
    assert answered.returncode == 0, answered.explain()  # INVITE, then ACK and BYE, all reached the phone
    assert invites_in == 1
