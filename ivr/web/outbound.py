"""Outbound routes: event-triggered calls and campaign progress, pause and resume.

    POST /api/outbound/calls        {number, campaign, flow?, variables?, not_before?, priority?, id?}  (supervisor)
    GET  /api/outbound/calls/{id}   that call's state: pending / dialing / done, attempts, result   (supervisor)
    GET  /api/campaigns             every campaign's progress                                        (viewer)
    GET  /api/campaigns/{id}        one campaign's progress                                          (viewer)
    POST /api/campaigns/{id}/pause, /resume                                                          (supervisor)

Registered by `add_outbound_routes(app, control)` right after `create_app` (the engine does it when
campaigns are configured); the routes go through the same guard (tokens, roles, JSON-only mutations).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from ivr.outbound.errors import TargetError
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import TargetState
from ivr.outbound.targets import make_target
from ivr.store import BadQuery
from ivr.web.access import Role
from ivr.web.api import json_body
from ivr.web.guard import ROUTE_ROLES, Handler


class OutboundControl(Protocol):
    scheduler: Scheduler

    def wake(self) -> None: ...

    def wall(self) -> dt.datetime: ...


OUTBOUND = web.AppKey("ivr_web_outbound", OutboundControl)


def _control(request: web.Request) -> OutboundControl:
    return request.app[OUTBOUND]


def _refused(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def _campaign_id(control: OutboundControl, name: object) -> str:
    if not isinstance(name, str) or name not in {c.id for c in control.scheduler.campaigns()}:
        known = ", ".join(sorted(c.id for c in control.scheduler.campaigns()))
        raise _refused(web.HTTPNotFound, f"no campaign {name!r}; known: {known}")
    return name


def call_state_json(state: TargetState) -> dict[str, Any]:
    return {
        "id": state.target.target_id,
        "campaign": state.campaign,
        "number": state.target.number,
        "flow": state.target.flow,
        "status": state.status.value,
        "attempts": state.attempts,
        "next_at": state.next_at.astimezone(dt.UTC).isoformat(),
        "last_result": state.last_result.value if state.last_result else None,
        "result_code": state.result_code,
    }


def _not_before(body: dict[str, Any], now: dt.datetime) -> dt.datetime:
    value = body.get("not_before")
    if value is None:
        return now
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise BadQuery(f"field 'not_before' must be an ISO 8601 time, got {value!r}") from None
    if when.tzinfo is None:
        raise BadQuery("field 'not_before' needs a time zone offset (e.g. +08:00 or Z)")
    return max(when, now)


async def post_call(request: web.Request) -> web.Response:
    """Queue one call now (or at `not_before`), e.g. from a payment system on a failed premium."""
    control = _control(request)
    body = await json_body(request)
    campaign = _campaign_id(control, body.get("campaign"))
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise BadQuery("field 'variables' must be an object of names to values")
    call_id = str(body.get("id") or uuid.uuid4().hex)
    values = {**variables, "id": call_id, "number": body.get("number"), "priority": body.get("priority"),
              "flow": body.get("flow"), "timezone": body.get("timezone")}
    try:
        target = make_target(values, default_id=call_id)
    except TargetError as exc:
        raise BadQuery(str(exc)) from None
    if target.flow is not None and control.scheduler.flows_known is not None \
            and not control.scheduler.flows_known(target.flow):
        raise BadQuery(f"field 'flow': no flow has id {target.flow!r}")
    now = control.wall()
    if not await asyncio.to_thread(control.scheduler.add_targets, campaign, [target], _not_before(body, now)):
        raise _refused(web.HTTPConflict, f"call id {call_id!r} already exists in campaign {campaign!r}")
    control.wake()
    state = control.scheduler.target(campaign, target.target_id)
    assert state is not None
    response = web.json_response(call_state_json(state), status=201)
    response.headers["Location"] = f"/api/outbound/calls/{call_id}"
    return response


async def get_call(request: web.Request) -> web.Response:
    control = _control(request)
    call_id = request.match_info["call_id"]
    for campaign in control.scheduler.campaigns():
        state = control.scheduler.target(campaign.id, call_id)
        if state is not None:
            return web.json_response(call_state_json(state))
    return web.json_response({"error": f"no outbound call {call_id!r}"}, status=404)


async def list_campaigns(request: web.Request) -> web.Response:
    scheduler = _control(request).scheduler
    return web.json_response({"campaigns": [scheduler.progress(c.id).to_json() for c in scheduler.campaigns()]})


async def get_campaign(request: web.Request) -> web.Response:
    control = _control(request)
    campaign = _campaign_id(control, request.match_info["campaign"])
    return web.json_response(control.scheduler.progress(campaign).to_json())


def _pauser(paused: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        control = _control(request)
        campaign = _campaign_id(control, request.match_info["campaign"])
        # Off the loop (issue 22): a write to the campaign state, or a wait for the dialer's query.
        await asyncio.to_thread(control.scheduler.pause if paused else control.scheduler.resume, campaign)
        if not paused:
            control.wake()
        return web.json_response(control.scheduler.progress(campaign).to_json())

    return handler


ROUTES: tuple[tuple[str, str, Callable[[web.Request], Any], Role], ...] = (
    ("POST", "/api/outbound/calls", post_call, Role.SUPERVISOR),
    ("GET", "/api/outbound/calls/{call_id}", get_call, Role.SUPERVISOR),
    ("GET", "/api/campaigns", list_campaigns, Role.VIEWER),
    ("GET", "/api/campaigns/{campaign}", get_campaign, Role.VIEWER),
    ("POST", "/api/campaigns/{campaign}/pause", _pauser(True), Role.SUPERVISOR),
    ("POST", "/api/campaigns/{campaign}/resume", _pauser(False), Role.SUPERVISOR),
)


def add_outbound_routes(app: web.Application, control: OutboundControl) -> None:
    """Call right after `create_app`, before the app starts: the routes and their roles."""
    app[OUTBOUND] = control
    roles = app[ROUTE_ROLES]
    for method, path, handler, role in ROUTES:
        app.router.add_route(method, path, handler)
        roles[(method, path)] = role


__all__ = ["OUTBOUND", "ROUTES", "OutboundControl", "add_outbound_routes", "call_state_json"]
