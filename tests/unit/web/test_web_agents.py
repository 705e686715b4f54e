"""Agent controls over HTTP (pause with a reason, resume, end wrap-up, log out/in) on a real ACD and
AgentDesk: who may (the agent's own token or a supervisor's), what the agent looks like after, the spec."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import SUPERVISOR, VIEWER, WALL, assert_spec_matches_routes, bearer

from ivr.acd import Acd, MemoryBackend
from ivr.acd.config import parse_config
from ivr.clock import FakeClock
from ivr.engine.agents import AgentDesk
from ivr.web import ApiAccess, LiveState, Role, create_app
from ivr.web.agents import add_agent_routes

Client = TestClient[web.Request, web.Application]
AGENT_TOKEN, OTHER_TOKEN = "ivr_agent-a1-token", "ivr_agent-a2-token"
ACCESS = ApiAccess.for_tokens((VIEWER, "wall-screen", Role.VIEWER), (SUPERVISOR, "shift-lead", Role.SUPERVISOR),
                              (AGENT_TOKEN, "a1", Role.VIEWER), (OTHER_TOKEN, "a2", Role.VIEWER))
CONFIG = parse_config(
    """
sites:
  - {id: north, region: north, central: true}
agents:
  - {id: a1, sip: {username: a1, password: pw}, site: north, skills: {general: 1}, wrap_up_s: 60}
  - {id: a2, sip: {username: a2, password: pw}, site: north, skills: {general: 1}}
""",
    "queues:\n  - {id: general, strategy: longest-idle}\n",
)


@dataclass
class Desk:
    acd: Acd
    desk: AgentDesk
    client: Client

    async def post(self, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        resp = await self.client.post(path, json=body or {}, headers=bearer(token))
        return resp.status, await resp.json()


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    clock = FakeClock(wall_start=WALL)
    live = LiveState()
    async with Acd(CONFIG, MemoryBackend(), clock) as acd:
        agents = AgentDesk(acd, live, clock)
        acd.add_listener(agents.publish)
        agents.registration_changed("a1", "sip:a1@10.0.0.1")
        agents.registration_changed("a2", "sip:a2@10.0.0.2")
        await acd.settled()
        while acd.agent("a1").status.value != "available" or acd.agent("a2").status.value != "available":
            await acd.settled()
        app = create_app(store=None, live=live, access=ACCESS, clock=clock)  # type: ignore[arg-type]
        add_agent_routes(app, agents, live)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield Desk(acd, agents, client)


async def test_an_agent_pauses_with_a_reason_and_resumes_with_their_own_token(desk: Desk) -> None:
    status, body = await desk.post("/api/agents/a1/pause", AGENT_TOKEN, {"reason": "lunch"})
    assert status == 200, body
    assert body["state"] == "on_break" and body["pause_reason"] == "lunch"
    assert body["today"]["pauses"] == 1
    assert desk.acd.agent("a1").pause_reason == "lunch"
    status, body = await desk.post("/api/agents/a1/resume", AGENT_TOKEN)
    assert status == 200 and body["state"] == "available" and body["pause_reason"] is None


async def test_another_agents_token_is_refused_and_a_supervisors_is_not(desk: Desk) -> None:
    status, body = await desk.post("/api/agents/a1/pause", OTHER_TOKEN)
    assert status == 403 and "may control only agent 'a2'" in body["error"]
    status, _ = await desk.post("/api/agents/a1/pause", VIEWER)
    assert status == 403
    status, body = await desk.post("/api/agents/a1/pause", SUPERVISOR)
    assert status == 200 and body["pause_reason"] == "break"


async def test_an_auto_paused_agent_can_resume(desk: Desk) -> None:
    await desk.acd.controls.pause("a1", "no_answer")  # what the ACD does after max_no_answer misses
    status, body = await desk.post("/api/agents/a1/resume", AGENT_TOKEN)
    assert status == 200 and body["state"] == "available"
    assert desk.acd.agent("a1").consecutive_misses == 0


async def test_wrap_up_done_outside_wrap_up_is_a_conflict_and_unknown_agents_404(desk: Desk) -> None:
    status, body = await desk.post("/api/agents/a1/wrapup-done", AGENT_TOKEN)
    assert status == 409 and "wrap_up_end" in body["error"]
    status, body = await desk.post("/api/agents/zz/pause", SUPERVISOR)
    assert status == 404


async def test_a_logged_out_agent_stays_out_while_the_phone_refreshes_until_login(desk: Desk) -> None:
    status, body = await desk.post("/api/agents/a1/logout", AGENT_TOKEN)
    assert status == 200 and body["state"] == "logged_out"
    desk.desk.registration_changed("a1", "sip:a1@10.0.0.1")  # REGISTER refresh
    await desk.acd.settled()
    assert desk.acd.agent("a1").status.value == "logged_out"
    status, body = await desk.post("/api/agents/a1/login", AGENT_TOKEN)
    assert status == 200 and body["state"] == "available"


async def test_the_routes_are_documented_and_answer_the_agent_schema(desk: Desk) -> None:
    resp = await desk.client.get("/api/openapi.json", headers=bearer(SUPERVISOR))
    spec = await resp.json()
    assert desk.client.app is not None
    assert_spec_matches_routes(spec, desk.client.app)
    text = json.dumps({"$defs": spec["components"]["schemas"], **spec["components"]["schemas"]["Agent"]})
    schema = jsonschema.Draft202012Validator(json.loads(text.replace("#/components/schemas/", "#/$defs/")))
    _, body = await desk.post("/api/agents/a2/pause", SUPERVISOR, {"reason": "training"})
    schema.validate(body)
    listed = await (await desk.client.get("/api/agents", headers=bearer(VIEWER))).json()
    a2 = next(a for a in listed["agents"] if a["agent_id"] == "a2")
    assert a2["pause_reason"] == "training" and a2["today"]["pauses"] == 1
