"""Every route the engine's app can serve — the core table plus the optional agents, outbound, messages and
recordings routes — is enumerated from the app's router, not from a list kept by hand: a route added later
is covered the day it is added. Each one but the open pages and probes names its role explicitly, refuses
a request without a valid token (401), and one whose token is too weak (403). What changes state or reads
callers' data needs a supervisor, except an agent's own controls, which a viewer token named after that
agent may use (and no other viewer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import VIEWER, bearer

from ivr.web import Role
from ivr.web.agents import add_agent_routes
from ivr.web.guard import OPEN_PATHS, ROUTE_ROLES
from ivr.web.messages import add_message_routes
from ivr.web.outbound import add_outbound_routes
from ivr.web.recordings import add_recording_routes

Client = TestClient[web.Request, web.Application]

PAGES = frozenset({"/", "/api/docs"})
"""The dashboard's and the API docs' shells: no data in them, so no token (`ivr.web.guard`)."""
PERSONAL = ("/api/calls", "/api/messages", "/api/recordings", "/api/outbound", "/api/callers", "/api/tokens")
"""Prefixes of routes that read or change callers' data (numbers, transcripts, audio) or credentials."""
AGENT_CONTROLS = "/api/agents/{agent_id}/"
MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAMPLE = {"{call_id}": "c1", "{agent_id}": "a1", "{dispatch_id}": "d1", "{number}": "1380", "{name}": "x",
          "{message_id}": "1", "{campaign}": "pay"}  # fmt: skip


def full_app(app: web.Application) -> web.Application:
    """`app` with every optional route set the engine may add. The guard refuses before any handler
    runs, so the controls behind them are never called: placeholders do."""
    nothing = cast(Any, object())
    add_agent_routes(app, nothing, nothing)
    add_outbound_routes(app, nothing)
    add_message_routes(app, nothing)
    add_recording_routes(app, nothing)
    return app


def routes(app: web.Application) -> list[tuple[str, str]]:
    found = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD" and not r.resource.canonical.startswith("/static")
    }
    return sorted(found)


def sample(path: str) -> str:
    for name, value in SAMPLE.items():
        path = path.replace(name, value)
    assert "{" not in path, f"add a sample value for {path}"
    return path


@pytest.fixture
async def served(app: web.Application) -> AsyncIterator[tuple[web.Application, Client]]:
    full_app(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield app, client


async def test_every_route_but_pages_and_probes_needs_a_token_and_names_its_role(
    served: tuple[web.Application, Client],
) -> None:
    app, client = served
    roles = app[ROUTE_ROLES]
    checked = 0
    for method, path in routes(app):
        if path in PAGES or path in OPEN_PATHS:
            continue
        assert roles.get((method, path)) is not None, f"{method} {path}: no explicit role in the route table"
        resp = await client.request(method, sample(path), data=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status == 401, f"{method} {path} answered {resp.status} without a token"
        bad = await client.request(
            method, sample(path), data=b"{}", headers={"Content-Type": "application/json", **bearer("ivr_not-a-token")}
        )
        assert bad.status == 401, f"{method} {path} answered {bad.status} to a made-up token"
        checked += 1
    assert checked >= 35  # the core table and the four optional sets were all there


async def test_a_viewer_cannot_change_state_or_read_callers_data(served: tuple[web.Application, Client]) -> None:
    app, client = served
    roles = app[ROUTE_ROLES]
    for method, path in routes(app):
        role = roles.get((method, path))
        if role is None:
            continue
        sensitive = method in MUTATIONS or path.startswith(PERSONAL)
        if not sensitive:
            continue
        if path.startswith(AGENT_CONTROLS) and method == "POST":
            assert role is Role.VIEWER  # an agent's own viewer token; the handler checks the name
        else:
            assert role.covers(Role.SUPERVISOR), f"{method} {path} needs only a {role.value}"
        resp = await client.request(
            method, sample(path), data=b"{}", headers={"Content-Type": "application/json", **bearer(VIEWER)}
        )
        assert resp.status == 403, f"{method} {path} answered {resp.status} to a viewer (not agent a1)"
