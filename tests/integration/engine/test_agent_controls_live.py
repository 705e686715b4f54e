"""Agents at real softphones: baresip agents pause and resume (by API with their own token, and by feature
codes dialled from the phone), and hand a caller on — blind (REFER) and attended (a consultation call,
then REFER with Replaces) — with the IVR context arriving at the next agent in X-IVR headers, and the
record and journey showing the chain.

Commands are typed into baresip through its `cons` module, as the agent would at the phone.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivr.testing.caller import Keys, Pause, Step, TestCaller
from ivr.web.access import token_digest
from tests.integration.engine.agents import (
    AgentSpec,
    BaresipAgent,
    baresip_agent,
    invite_headers,
    log_events,
    running_engine,
    until_agent_on_call,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import RunningEngine, needs_tts
from tests.integration.sip.sip_peers import HOST, needs_baresip

pytestmark = [pytest.mark.integration, needs_baresip]

TO_GENERAL: list[Step] = [Pause(1.0), Keys("0"), *[Pause(1.0)] * 110]
"""Key 0 during the greeting: the hotline queues the caller for `general`; then stay on the line."""
A1 = AgentSpec("a1", {"general": 2})
A2 = AgentSpec("a2", {"claims": 2})
AGENT_TOKEN = "ivr_live-test-agent-a1-token"
"""a2 serves no queue the caller joins: only a transfer brings them the caller."""


def post(engine: RunningEngine, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(engine.api + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def agent_view(engine: RunningEngine, agent_id: str) -> dict[str, Any]:
    return next(a for a in engine.get("/api/agents")["agents"] if a["agent_id"] == agent_id)


async def until_waiting(engine: RunningEngine, queue: str, waiting: int, timeout_s: float = 15.0) -> None:
    """Until /api/queues shows `waiting` callers in `queue`: with several workers, a call enqueued on one reaches
    the API's worker through the shared ACD a moment after that worker's log says so."""
    shown: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                shown = (await asyncio.to_thread(engine.get, "/api/queues"))["queues"]
                if any(q["queue"] == queue and q["waiting"] == waiting for q in shown):
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{queue} never showed {waiting} waiting within {timeout_s} s: {shown}") from None


async def until_agent(engine: RunningEngine, agent_id: str, state: str, timeout_s: float = 15.0) -> dict[str, Any]:
    view: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                view = await asyncio.to_thread(agent_view, engine, agent_id)
                if view["state"] == state:
                    return view
                await asyncio.sleep(0.1)  # another process's state: nothing to await but its API
    except TimeoutError:
        raise AssertionError(f"agent {agent_id} not {state} within {timeout_s} s: {view}") from None

async def transfer_to_consulted(phone: BaresipAgent, engine: RunningEngine, consulted: dict[str, Any],
                                sip_port: int) -> dict[str, Any]:
    """The consulting agent goes back to the caller's call (line 1) and REFERs it with Replaces naming the
    consultation (`consulted`: its consultation_bridged entry) to a2; the engine's agent_transferred entry."""
    replaces = urllib.parse.quote(
        f"{consulted['consultation']};to-tag={consulted['our_tag']};from-tag={consulted['their_tag']}", safe="")
    phone.command("/line 1")
    phone.command(f"/transfer <sip:a2@{HOST}:{sip_port}?Replaces={replaces}>")
    return (await wait_for_log(engine, "agent_transferred", 30.0, kind="attended"))[0]



def offers_to(agent: BaresipAgent) -> list[dict[str, str]]:
    """The engine's INVITEs that offered this agent a caller (not the phone's own calls)."""
    return [h for h in map(invite_headers, agent.invites()) if "x-ivr-call-id" in h]


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    test_caller = await TestCaller.open(rtp_ports=(43300, 43398))
    try:
        yield test_caller
    finally:
        await test_caller.close()


async def hang_up(caller: TestCaller, call_id: str) -> None:
    for leg in caller.ua.legs:
        if leg.call_id == call_id:
            await leg.bye()


def record_of(engine: RunningEngine, call_id: str) -> dict[str, Any]:
    return engine.call_detail(call_id)


@needs_tts
async def test_pause_by_code_and_api_stops_offers_and_resume_brings_them_back(
    tmp_path: pathlib.Path, caller: TestCaller
) -> None:
    # Issued in the config, not through POST /api/tokens (that would persist in the checkout's var/).
    config = write_engine_config(tmp_path, [A1], api_tokens=[{"name": "a1", "role": "viewer",
                                                              "sha256": token_digest(AGENT_TOKEN)}])
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, A1, engine.sip_port, console=True) as phone:
            await phone.expect(r"a1@.*200 OK")
            await until_agent(engine, "a1", "available")
            phone.command("/dial *215")  # pause, reason code 5, from the agent's own phone
            await wait_for_log(engine, "feature_code_done", 30.0, code="*21", agent="a1")
            view = await until_agent(engine, "a1", "on_break")
            assert view["pause_reason"] == "code-5" and view["today"]["pauses"] == 1
            await wait_for_log(engine, "call_leg_ended", 30.0)  # confirmed, then hung up by the engine

            first = asyncio.create_task(caller.call(engine.uri, TO_GENERAL, from_number="13700000501", linger_s=0.0))
            queued = (await wait_for_log(engine, "call_enqueued", 60.0))[0]
            await until_waiting(engine, "general", 1)
            assert offers_to(phone) == [], "a paused agent is offered nobody"
            phone.command("/dial *22")  # resume from the phone: the waiting caller is offered at once
            bridged = (await wait_for_log(engine, "call_bridged", 30.0, agent="a1"))[0]
            assert bridged["call_id"] == queued["call_id"]
            assert [h["x-ivr-call-id"] for h in offers_to(phone)] == [queued["call_id"]]
            await hang_up(caller, bridged["call_id"])
            await asyncio.wait_for(first, 15)

            # The agent's own API token (a viewer token named as the agent) pauses and resumes them too.
            own = AGENT_TOKEN
            await until_agent(engine, "a1", "available", 30.0)  # after the 1 s wrap-up
            paused = await asyncio.to_thread(post, engine, "/api/agents/a1/pause", own, {"reason": "lunch"})
            assert paused["state"] == "on_break" and paused["pause_reason"] == "lunch"
            second = asyncio.create_task(caller.call(engine.uri, TO_GENERAL, from_number="13700000502", linger_s=0.0))
            queued = (await wait_for_log(engine, "call_enqueued", 60.0, count=2))[1]
            assert len(offers_to(phone)) == 1, "no offer while paused"
            resumed = await asyncio.to_thread(post, engine, "/api/agents/a1/resume", own)
            assert resumed["state"] in ("available", "ringing", "in_call")
            bridged = (await wait_for_log(engine, "call_bridged", 30.0, count=2))[1]
            assert bridged["call_id"] == queued["call_id"]
            view = await asyncio.to_thread(agent_view, engine, "a1")
            assert view["today"]["pauses"] == 2 and view["today"]["calls"] >= 1
            await hang_up(caller, bridged["call_id"])
            await asyncio.wait_for(second, 15)


async def bridged_to_a1(engine: RunningEngine, caller: TestCaller, number: str) -> tuple[asyncio.Task[Any], str]:
    call = asyncio.create_task(caller.call(engine.uri, TO_GENERAL, from_number=number, linger_s=0.0))
    bridged = (await wait_for_log(engine, "call_bridged", 60.0, agent="a1"))[0]
    await until_agent_on_call(engine, "a1", bridged["call_id"])
    return call, bridged["call_id"]


def chain_steps(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["data"] for e in detail["journey"] if e["kind"] == "agent_transferred"]


@needs_tts
async def test_a_blind_transfer_by_a_baresip_agent_carries_the_context_to_the_next(
    tmp_path: pathlib.Path, caller: TestCaller
) -> None:
    config = write_engine_config(tmp_path, [A1, A2])
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, A1, engine.sip_port, console=True) as first, \
                baresip_agent(tmp_path, A2, engine.sip_port) as second:
            await first.expect(r"a1@.*200 OK")
            await second.expect(r"a2@.*200 OK")
            call, call_id = await bridged_to_a1(engine, caller, "13700000601")
            first.command(f"/transfer sip:a2@{HOST}:{engine.sip_port}")
            moved = (await wait_for_log(engine, "agent_transferred", 30.0, kind="blind"))[0]
            assert (moved["by"], moved["to"], moved["to_kind"], moved["status"]) == ("a1", "a2", "agent", 200)
            await until_agent_on_call(engine, "a2", call_id)
            (offer,) = offers_to(second)
            assert offer["x-ivr-call-id"] == call_id and offer["x-ivr-queue"] == "general"
            assert offer["x-ivr-transferred-by"] == "a1" and offer["x-ivr-transfer"] == "blind"
            assert offer["x-ivr-dialect"]
            await first.expect(r"(?i)transfer")  # the phone saw the NOTIFY's final status
            await hang_up(caller, call_id)
            await asyncio.wait_for(call, 15)
            detail = await asyncio.to_thread(record_of, engine, call_id)
    record = detail["record"]
    assert record["agent_id"] == "a2" and record["variables"]["agent_chain"] == "a1 > a2"
    assert chain_steps(detail) == [{"by": "a1", "kind": "blind", "to": "a2", "to_kind": "agent", "status": 200,
                                    "at_s": moved_at(detail)}]


def moved_at(detail: dict[str, Any]) -> float:
    return float(chain_steps(detail)[0]["at_s"])


@needs_tts
async def test_an_attended_transfer_consults_then_replaces_with_the_context_at_the_next_agent(
    tmp_path: pathlib.Path, caller: TestCaller
) -> None:
    config = write_engine_config(tmp_path, [A1, A2])
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, A1, engine.sip_port, console=True) as first, \
                baresip_agent(tmp_path, A2, engine.sip_port) as second:
            await first.expect(r"a1@.*200 OK")
            await second.expect(r"a2@.*200 OK")
            call, call_id = await bridged_to_a1(engine, caller, "13700000701")
            first.command("/dial a2")  # the consultation: a1 calls a2 from the same phone
            consulted = (await wait_for_log(engine, "consultation_bridged", 30.0, agent="a1"))[0]
            assert consulted["about"] == call_id
            (offer,) = offers_to(second)
            assert offer["x-ivr-call-id"] == call_id and offer["x-ivr-consulted-by"] == "a1"
            moved = await transfer_to_consulted(first, engine, consulted, engine.sip_port)
            assert (moved["by"], moved["to"], moved["status"]) == ("a1", "a2", 200)
            await until_agent_on_call(engine, "a2", call_id)
            await hang_up(caller, call_id)
            await asyncio.wait_for(call, 15)
            detail = await asyncio.to_thread(record_of, engine, call_id)
            assert not log_events(engine, "transfer_refused")
    assert detail["record"]["agent_id"] == "a2"
    assert [(s["by"], s["kind"], s["to"]) for s in chain_steps(detail)] == [("a1", "attended", "a2")]
