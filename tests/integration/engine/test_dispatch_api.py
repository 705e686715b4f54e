"""Emergency cross-region dispatch through the real HTTP API of `ivr serve`, with a real softphone.

The `general` queue belongs to the south region and is served by Guangzhou's agents only; the one
agent on duty is a baresip softphone of the Beijing site, so a caller finds nobody (`join_empty:
false`: the ACD answers unavailable at once and the flow hangs up). A small flow sends every caller
straight to that queue, so each call takes seconds. An operator
then lends Beijing's agents to the south (`POST /api/dispatch`): the next caller rings the Beijing
agent and is bridged. Ending it (`DELETE /api/dispatch/{id}`) stops the borrowing: the next caller
finds nobody again. `GET /api/dispatch` shows both changes, and the refused request, recorded.
The last test runs two engine nodes sharing the ACD through Redis: a dispatch asked on one node
lends the agent to callers of the other, and is ended there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ivr.testing import peers
from ivr.testing.caller import Pause, TestCaller
from ivr.testing.redis_server import local_redis_server
from tests.integration.engine.agents import (
    AgentSpec,
    BaresipAgent,
    baresip_agent,
    log_events,
    until_agent_on_call,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine
from tests.integration.sip.sip_peers import needs_baresip

pytestmark = [pytest.mark.integration, needs_baresip]

BEIJING_AGENT = AgentSpec("bj1", {"general": 2}, site="beijing")
SOUTH_GENERAL = {"general": {"region": "south", "sites": ["guangzhou"], "join_empty": False}}
"""Only Guangzhou's agents serve `general`; a caller finding none of them logged in is told at once."""
BEIJING_TIME = timezone(timedelta(hours=8))
QUEUE_NUMBER = "7500"
QUEUE_FLOW = f"""\
id: to_general
version: "1"
numbers: ["{QUEUE_NUMBER}"]
dialects: [en]
default_dialect: en
queues: [general]
start: to_human
nodes:
  to_human:
    type: queue
    queue: general
    answered: done
    callback: done
    unavailable: done
  done:
    type: hangup
"""


def api(engine: RunningEngine, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    """One HTTP request to the engine's API: (status, JSON body), errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(engine.api + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **engine.headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def call(engine: RunningEngine, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    return await asyncio.to_thread(api, engine, method, path, body)


async def agent_logged_in(engine: RunningEngine, agent: BaresipAgent) -> None:
    """baresip registered and the ACD logged the agent in (the dashboard's agent list says available)."""
    await agent.expect(rf"{agent.spec.agent_id}@.*200 OK")
    async with asyncio.timeout(10):
        while True:
            _, body = await call(engine, "GET", "/api/agents")
            if any(a["agent_id"] == agent.spec.agent_id and a["state"] == "available" for a in body["agents"]):
                return
            await asyncio.sleep(0.2)


async def caller_to_general(engine: RunningEngine, rtp_base: int, number: str) -> dict[str, Any]:
    """A caller dials the queue number and stays until the engine hangs up (nobody to serve the
    queue) or bridges the call to an agent (then hangs up); returns the finished record and journey."""
    caller = await TestCaller.open(rtp_ports=(rtp_base, rtp_base + 98))
    try:
        task = asyncio.create_task(caller.call(f"sip:{QUEUE_NUMBER}@127.0.0.1:{engine.sip_port}",
                                               [Pause(1.0)] * 30, from_number=number, linger_s=0.0,
                                               max_duration_s=40.0))
        bridges = len(log_events(engine, "call_bridged")) + 1
        bridged = asyncio.create_task(wait_for_log(engine, "call_bridged", 35.0, count=bridges))
        await asyncio.wait({task, bridged}, return_when=asyncio.FIRST_COMPLETED)
        if bridged.done() and not task.done():
            latest = bridged.result()[-1]  # both legs up: wait until the ACD has the agent talking
            await until_agent_on_call(engine, str(latest["agent"]), str(latest["call_id"]))
            for leg in caller.ua.legs:
                await leg.bye()
        bridged.cancel()
        report = await asyncio.wait_for(task, 15)
    finally:
        await caller.close()
    return await asyncio.to_thread(engine.call_detail, report.call_id)


@contextlib.asynccontextmanager
async def engine_with_queue_flow(tmp: pathlib.Path, **settings: object) -> AsyncIterator[RunningEngine]:
    """`ivr serve` with the test ACD config (`settings`: acd_backend, redis_url, node_id...) and the
    one-node flow that puts every caller of QUEUE_NUMBER in `general`."""
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    config = write_engine_config(tmp, [BEIJING_AGENT], SOUTH_GENERAL, **settings)
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "to_general.yaml").write_text(QUEUE_FLOW, encoding="utf-8")
    engine = await asyncio.to_thread(start_engine, tmp, "--config", str(config), "--flows", str(flows))
    try:
        yield engine
    finally:
        await asyncio.to_thread(stop_engine, engine)


def queue_results(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """(queue, result) of every queue the call joined, from its journey."""
    return [(e["data"]["queue"], e["data"]["result"]) for e in detail["journey"] if e["kind"] == "queue_result"]


def dispatch_body(until: datetime) -> dict[str, object]:
    return {"region": "south", "queues": ["general"], "helper_sites": ["beijing"],
            "until": until.isoformat(), "reason": "typhoon: Guangzhou site evacuated", "requested_by": "ops-lead"}


async def test_dispatch_lends_the_helper_sites_agent_until_ended_every_change_recorded(
    tmp_path: pathlib.Path,
) -> None:
    async with engine_with_queue_flow(tmp_path / "engine") as engine:
        async with baresip_agent(tmp_path, BEIJING_AGENT, engine.sip_port) as agent:
            await agent_logged_in(engine, agent)
            before = await caller_to_general(engine, 44100, "13700000601")

            refused = await call(engine, "POST", "/api/dispatch",
                                 {**dispatch_body(datetime.now(UTC) + timedelta(hours=2)), "helper_sites": ["wuhan"]})
            until = (datetime.now(UTC) + timedelta(hours=2)).astimezone(BEIJING_TIME).replace(microsecond=0)
            started = await call(engine, "POST", "/api/dispatch", dispatch_body(until))
            assert started[0] == 201, started
            dispatch_id = started[1]["id"]
            lent = await caller_to_general(engine, 44200, "13700000602")

            ended = await call(engine, "DELETE", f"/api/dispatch/{dispatch_id}")
            assert ended[0] == 200, ended
            after = await caller_to_general(engine, 44300, "13700000603")
            again = await call(engine, "DELETE", f"/api/dispatch/{dispatch_id}")
            unknown = await call(engine, "DELETE", "/api/dispatch/d404")
            listed = await call(engine, "GET", "/api/dispatch")

    # Before: Beijing's agent, logged in and idle, does not serve the south's queue.
    assert queue_results(before) == [("general", "unavailable")] and before["record"]["agent_id"] == ""
    # A site the ACD does not know is refused, naming it.
    assert refused == (409, {"error": "dispatch names unknown helper site 'wuhan'"})
    assert started[1] == {
        "id": dispatch_id, "region": "south", "queues": ["general"], "helper_sites": ["beijing"],
        "since": started[1]["since"], "until": until.isoformat(), "reason": "typhoon: Guangzhou site evacuated",
        "requested_by": "env",  # the name of the token sent (IVR_API_TOKEN's), not what the body said
    }  # fmt: skip
    # Lent: the caller rang Beijing's softphone (one INVITE, for this call) and was bridged to it.
    assert queue_results(lent) == [("general", "answered")]
    assert lent["record"]["agent_id"] == "bj1" and lent["record"]["outcome"] == "to-agent"
    (invite,) = agent.invites()
    assert lent["record"]["call_id"] in invite
    # Ended: the borrowing stopped; the agent was never rung again.
    assert queue_results(after) == [("general", "unavailable")] and after["record"]["agent_id"] == ""
    assert ended[1]["id"] == dispatch_id and "ended_at" in ended[1]
    assert again[0] == 409 and again[1]["error"].startswith(f"dispatch {dispatch_id!r} already ended at ")
    assert unknown[0] == 404 and unknown[1]["error"].startswith("no dispatch 'd404'")

    status, body = listed
    assert status == 200 and body["active"] == []
    assert [(c["change"], c["dispatch"]["id"]) for c in body["changes"]] == [
        ("started", dispatch_id), ("ended", dispatch_id),
    ]  # fmt: skip
    log = [(e["action"], e["accepted"], e["dispatch_id"]) for e in reversed(body["log"])]
    assert log == [
        ("start", False, ""), ("start", True, dispatch_id), ("end", True, dispatch_id),
        ("end", False, dispatch_id), ("end", False, "d404"),
    ]  # fmt: skip
    oldest = body["log"][-1]
    assert oldest["helper_sites"] == ["wuhan"] and oldest["detail"] == refused[1]["error"]
    recorded_start = body["log"][-2]
    assert recorded_start["until"] == until.astimezone(UTC).isoformat()
    assert (recorded_start["region"], recorded_start["queues"], recorded_start["requested_by"]) == (
        "south", ["general"], "env"
    )


@pytest.mark.skipif(peers.REDIS_SERVER.missing, reason=peers.REDIS_SERVER.reason)
async def test_dispatch_asked_on_one_node_lends_the_agent_to_callers_of_another(tmp_path: pathlib.Path) -> None:
    with local_redis_server() as redis_url:
        shared = {"acd_backend": "redis", "redis_url": redis_url}
        async with engine_with_queue_flow(tmp_path / "node-a", node_id="node-a", **shared) as node_a:
            async with engine_with_queue_flow(tmp_path / "node-b", node_id="node-b", **shared) as node_b:
                async with baresip_agent(tmp_path, BEIJING_AGENT, node_b.sip_port) as agent:
                    await agent_logged_in(node_b, agent)
                    started = await call(node_a, "POST", "/api/dispatch",
                                         dispatch_body(datetime.now(UTC) + timedelta(hours=1)))
                    assert started[0] == 201, started
                    dispatch_id = started[1]["id"]
                    lent = await caller_to_general(node_b, 44400, "13700000611")
                    ended = await call(node_b, "DELETE", f"/api/dispatch/{dispatch_id}")
                    after = await caller_to_general(node_a, 44500, "13700000612")
                    listed_a = await call(node_a, "GET", "/api/dispatch")
                    listed_b = await call(node_b, "GET", "/api/dispatch")

    assert queue_results(lent) == [("general", "answered")] and lent["record"]["agent_id"] == "bj1"
    assert ended[0] == 200, ended
    assert queue_results(after) == [("general", "unavailable")]
    for status, body in (listed_a, listed_b):  # both nodes applied both changes from the shared log
        assert status == 200 and body["active"] == []
        assert [(c["change"], c["dispatch"]["id"]) for c in body["changes"]] == [
            ("started", dispatch_id), ("ended", dispatch_id),
        ]  # fmt: skip
    # Each node records the requests it was asked (its own SQLite file).
    assert [(e["action"], e["accepted"]) for e in listed_a[1]["log"]] == [("start", True)]
    assert [(e["action"], e["accepted"]) for e in listed_b[1]["log"]] == [("end", True)]
