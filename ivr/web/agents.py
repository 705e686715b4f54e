"""Agent controls over HTTP: pause (with a reason), resume, end wrap-up, log out, log in.

    POST /api/agents/{agent_id}/pause        {"reason": "lunch"} (optional)
    POST /api/agents/{agent_id}/resume       also after an automatic pause for missed offers
    POST /api/agents/{agent_id}/wrapup-done  available for the next caller now
    POST /api/agents/{agent_id}/logout       stays out while the phone refreshes its registration
    POST /api/agents/{agent_id}/login        back in at the phone's registered contact

Each answers the agent as `GET /api/agents` shows them. Who may: the agent's own token — a viewer token
whose name is the agent's id (issue one with `POST /api/tokens {"name": "a7", "role": "viewer"}`) — or
any supervisor's (or admin's). So the routes are open to viewers in the route table, and the handler
refuses (403) a viewer token named otherwise. Registered by `add_agent_routes(app, control)` when the
engine has agents; the same guard applies (tokens, JSON-only mutations).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ivr.acd import AcdError, UnknownAgent
from ivr.web.access import Role
from ivr.web.api import json_body, str_field
from ivr.web.guard import ROUTE_ROLES, identity
from ivr.web.sources import AcdView

MAX_REASON_CHARS = 40


class AgentControl(Protocol):
    """What the routes drive (`ivr.engine.agents.AgentDesk`)."""

    async def pause(self, agent_id: str, reason: str = "break") -> None: ...

    async def resume(self, agent_id: str) -> None: ...

    async def wrap_up_done(self, agent_id: str) -> None: ...

    async def logout(self, agent_id: str) -> None: ...

    async def login(self, agent_id: str) -> None: ...


AGENT_CONTROL = web.AppKey("ivr_web_agent_control", AgentControl)
AGENT_LIVE = web.AppKey("ivr_web_agent_live", AcdView)


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def _control(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        token = identity(request)
        if not token.role.covers(Role.SUPERVISOR) and token.name != agent_id:
            raise _error(web.HTTPForbidden, f"token {token.name!r} may control only agent {token.name!r} "
                                            "(a supervisor's token controls any agent)")
        control = request.app[AGENT_CONTROL]
        try:
            if action == "pause":
                body = await json_body(request) if request.can_read_body else {}
                reason = str_field(body, "reason", max_len=MAX_REASON_CHARS) or "break"
                await control.pause(agent_id, reason)
            else:
                await _ACTIONS[action](control, agent_id)
        except UnknownAgent:
            raise _error(web.HTTPNotFound, f"no agent with id {agent_id!r}") from None
        except AcdError as exc:
            raise _error(web.HTTPConflict, str(exc)) from None
        view = request.app[AGENT_LIVE].agent(agent_id)
        return web.json_response(view.to_json() if view is not None else {"agent_id": agent_id})

    return handler


_ACTIONS: dict[str, Callable[[AgentControl, str], Awaitable[None]]] = {
    "resume": lambda c, a: c.resume(a),
    "wrapup-done": lambda c, a: c.wrap_up_done(a),
    "logout": lambda c, a: c.logout(a),
    "login": lambda c, a: c.login(a),
}

ROUTES: tuple[tuple[str, str, Callable[[web.Request], Any], Role], ...] = tuple(
    ("POST", f"/api/agents/{{agent_id}}/{action}", _control(action), Role.VIEWER)
    for action in ("pause", *_ACTIONS)
)


def add_agent_routes(app: web.Application, control: AgentControl, live: AcdView) -> None:
    """Call right after `create_app`, before the app starts: the routes and their roles."""
    app[AGENT_CONTROL] = control
    app[AGENT_LIVE] = live
    roles = app[ROUTE_ROLES]
    for method, path, handler, role in ROUTES:
        app.router.add_route(method, path, handler)
        roles[(method, path)] = role


__all__ = ["AGENT_CONTROL", "ROUTES", "AgentControl", "add_agent_routes"]
