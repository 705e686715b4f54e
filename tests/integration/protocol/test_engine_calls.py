"""Protocol paths where the engine is the caller: it rings an agent's phone (SIPp, registered by digest)
for a queued caller. Under packet loss (the phone's SIPp runs with -lost and stays silent long enough
for the INVITE to need a retransmission), and when the phone's 200 OK crosses the engine's CANCEL.

Each test asserts what the agent's SIPp saw (exit 0: every message its scenario expects arrived, in
order; its message log: the retransmissions, the ACK, the BYE), then the engine's record of the caller.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from ivr.testing.caller import Pause, TestCaller
from tests.integration.engine.agents import log_events, wait_for_log
from tests.integration.engine.conftest import RunningEngine
from tests.integration.protocol.conftest import (
    CROSSING_AGENT,
    LOSSY_AGENT,
    QUEUE_NUMBERS,
    finished_call,
    fresh_number,
    until_agent_state,
    uri,
)
from tests.integration.protocol.peer import sipp_agent
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]


async def test_agent_call_survives_loss_by_retransmission(engine: RunningEngine, caller: TestCaller,
                                                          tmp_path: pathlib.Path) -> None:
    number = fresh_number("1370000")
    values = {"bye_timeout_ms": 30000}
    async with sipp_agent(tmp_path, LOSSY_AGENT.agent_id, LOSSY_AGENT.password, engine.sip_port,
                          "uas_agent_lossy.xml", values=values, uas_extra=["-lost", "10"]) as agent:
        await until_agent_state(engine, LOSSY_AGENT.agent_id, "available")
        # The module's engine log holds earlier tests' (and repetitions') bridges: wait for one more.
        earlier = len(log_events(engine, "call_bridged", agent=LOSSY_AGENT.agent_id))
        call = asyncio.create_task(caller.call(uri(engine, QUEUE_NUMBERS["claims"]), [Pause(1.0)] * 40,
                                               from_number=number, linger_s=0.0, max_duration_s=45.0))
        try:
            bridged = await wait_for_log(engine, "call_bridged", 30.0, count=earlier + 1, agent=LOSSY_AGENT.agent_id)
            for leg in caller.ua.legs:  # the caller hangs up: the engine must BYE the agent
                if leg.call_id == bridged[-1]["call_id"]:
                    await leg.bye()
            await asyncio.wait_for(call, 15)
        finally:
            call.cancel()
        run = await asyncio.wait_for(agent.finished, 40)
    assert run.returncode == 0, run.explain()
    invites = run.received("INVITE")
    assert len(invites) >= 2, "the engine never retransmitted its INVITE to the silent phone"
    assert len({m.header("Via") for m in invites}) == 1, "retransmissions are the same transaction"
    assert run.received("BYE"), "the caller hung up: the engine must end the agent's leg"
    # A BYE whose 200 SIPp lost is retransmitted until Timer F (32 s): the record may finish only then.
    detail = await finished_call(engine, number, timeout_s=45.0)
    assert detail["record"]["agent_id"] == LOSSY_AGENT.agent_id


async def test_a_200_crossing_our_cancel_is_acked_and_hung_up(engine: RunningEngine, caller: TestCaller,
                                                             tmp_path: pathlib.Path) -> None:
    number = "13700000802"
    values = {"cancel_timeout_ms": 20000, "bye_timeout_ms": 10000}
    async with sipp_agent(tmp_path, CROSSING_AGENT.agent_id, CROSSING_AGENT.password, engine.sip_port,
                          "uas_agent_crossing.xml", values=values) as agent:
        await until_agent_state(engine, CROSSING_AGENT.agent_id, "available")
        call = asyncio.create_task(caller.call(uri(engine, QUEUE_NUMBERS["service"]), [Pause(1.0)] * 40,
                                               from_number=number, linger_s=0.0, max_duration_s=45.0))
        try:
            await until_agent_state(engine, CROSSING_AGENT.agent_id, "ringing")
            for leg in caller.ua.legs:  # the caller gives up while the agent's phone rings
                await leg.bye()
            await asyncio.wait_for(call, 15)
        finally:
            call.cancel()
        run = await asyncio.wait_for(agent.finished, 40)
    assert run.returncode == 0, run.explain()
    received = [m.start_line.split(" ", 1)[0] for m in run.messages if m.direction == "received"]
    assert received[0] == "INVITE" and received.index("CANCEL") < received.index("ACK") < received.index("BYE")
    (invite,), (ack,) = run.received("INVITE"), run.received("ACK")
    assert (ack.header("CSeq") or "").split()[0] == (invite.header("CSeq") or "").split()[0], "ACK for the 2xx"
    detail = await finished_call(engine, number)
    assert detail["record"].get("agent_id") in (None, "")
    assert not [e for e in log_events(engine, "call_bridged") if e.get("call_id") == detail["record"]["call_id"]]
