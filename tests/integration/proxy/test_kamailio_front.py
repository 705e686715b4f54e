"""The engine behind a real Kamailio (deploy/kamailio/kamailio.cfg: dispatcher probing the engine by
OPTIONS, record_route, loose_route, Path with `received`), as a hotline cluster runs it.

A SIPp caller dials the hotline through the proxy, presses 0 and reaches queue `general`; its ACK,
INFO and BYE follow the route set it learned from the engine's 200 (SIPp's `[routes]`), so they must
pass through the proxy too. A baresip agent registers through the proxy (which adds Path) and is
offered the caller: the agent's INVITE must come from the proxy's address, not straight from the engine.
"""

from __future__ import annotations

import asyncio
import pathlib
import re

import pytest

from ivr.testing import peers
from tests.integration.engine.agents import (
    AgentSpec,
    baresip_agent,
    invite_headers,
    running_engine,
    sipp_caller_scenario,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import needs_tts
from tests.integration.engine.hours import NIGHT_NOTICE_S, night_now
from tests.integration.protocol.peer import run_scenario
from tests.integration.proxy.kamailio import kamailio_front
from tests.integration.sip.sip_peers import HOST, needs_baresip, needs_sipp

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    needs_baresip,
    needs_tts,
    pytest.mark.skipif(peers.KAMAILIO.missing, reason=peers.KAMAILIO.reason),
]

AGENT = AgentSpec("k1", {"general": 2})
CALLER = "13700000901"


def routes_through(header_values: list[str], port: int) -> bool:
    """True when a Route/Record-Route set names the proxy on `port` (with the loose-routing `lr`)."""
    return any(re.search(rf"<sip:{re.escape(HOST)}:{port};[^>]*\blr\b", value) for value in header_values)


async def test_a_caller_through_kamailio_reaches_an_agent_registered_through_it(tmp_path: pathlib.Path) -> None:
    config = write_engine_config(tmp_path, [AGENT])
    async with running_engine(tmp_path / "engine", config) as engine:
        async with kamailio_front(tmp_path, [engine.sip_port]) as proxy:
            async with baresip_agent(tmp_path, AGENT, proxy.port) as agent:
                await agent.expect(rf"{AGENT.agent_id}@.*200 OK", 15.0)
                scenario = sipp_caller_scenario(tmp_path, CALLER, 8.0 + (NIGHT_NOTICE_S if night_now() else 0.0))
                caller = asyncio.create_task(run_scenario(scenario, proxy.port, tmp_path, service="95519",
                                                          timeout_s=90.0))
                bridged = (await wait_for_log(engine, "call_bridged", 60.0))[0]
                run = await caller
                await agent.expect(r"terminated", 15.0)

    assert run.returncode == 0, run.explain()
    # The caller's side: the engine's 200 carried the proxy's Record-Route, so the in-dialog requests
    # SIPp sent (ACK, INFO with the key, BYE) carry a Route through the proxy.
    (ok,) = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"]
    assert routes_through(ok.headers("Record-Route"), proxy.port), ok.text
    for method in ("ACK", "INFO", "BYE"):
        (request,) = run.sent(method)
        assert routes_through(request.headers("Route"), proxy.port), request.text
    assert bridged["agent"] == AGENT.agent_id  # the caller pressed 0 and general's one agent took them

    # The agent's side: registered through the proxy with Path, called through it.
    invites = agent.invites()
    assert len(invites) == 1, agent.output[-3000:]
    assert f"UDP {HOST}:{proxy.port} ->" in agent.output, "the agent's INVITE did not come from the proxy"
    headers = invite_headers(invites[0])
    assert headers["x-ivr-queue"] == "general" and headers["x-ivr-call-id"] == bridged["call_id"]
    assert routes_through([headers.get("record-route", "")], proxy.port), headers
