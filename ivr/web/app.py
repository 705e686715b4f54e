"""The aiohttp application factory: the dashboard, the JSON API, SSE, /healthz, /readyz and /metrics.

The app takes its data sources as arguments (see `ivr.web.sources`): the engine wires the real
store, live state, ACD, flow registry, dispatcher and dialect setter; tests pass fakes. `ROUTES` is
the one table of routes and the role each needs; `ivr.web.guard` enforces it on every request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr.clock import Clock, LoopClock
from ivr.errors import ConfigError
from ivr.web import admin, api
from ivr.web.access import ApiAccess, Role
from ivr.web.api import SOURCES, WebSources, error_middleware
from ivr.web.guard import (
    ACCESS,
    ROUTE_ROLES,
    Handler,
    access_log_middleware,
    add_security_headers,
    guard_middleware,
)
from ivr.web.live import LiveState
from ivr.web.metrics import EngineMetrics
from ivr.web.openapi import build_spec
from ivr.web.sources import AcdView, AgentPresence, CallStoreView, DialectSetter, Dispatcher, FlowView, LiveView
from ivr.web.sse import SseHub

STATIC_DIR = Path(__file__).parent / "static"


async def _openapi_json(request: web.Request) -> web.Response:
    # Built on demand: routes added after create_app (ivr.web.outbound) are in the route table by then.
    roles = request.app[ROUTE_ROLES]
    text = json.dumps(build_spec(roles), ensure_ascii=False)
    return web.Response(text=text, content_type="application/json")


def _static_page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = STATIC_DIR / name

    async def page(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return page


@dataclass(slots=True, frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: Role | None
    """The role a token needs (None: open to anyone, like the pages that hold no data)."""


V, S, A = Role.VIEWER, Role.SUPERVISOR, Role.ADMIN
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", _static_page("index.html"), None),
    Route("GET", "/api/docs", _static_page("docs.html"), None),
    Route("GET", "/api/openapi.json", _openapi_json, V),
    Route("GET", "/api/whoami", admin.whoami, V),
    Route("GET", "/api/queues", api.list_queues, V),
    Route("GET", "/api/agents", api.list_agents, V),
    Route("GET", "/api/flows", api.list_flows, V),
    Route("GET", "/api/dispatch", api.list_dispatches, V),
    Route("GET", "/api/reports/summary", api.report_summary, V),
    Route("GET", "/api/events", api.events, V),
    Route("GET", "/metrics", api.metrics, V),
    Route("GET", "/api/calls", api.list_calls, S),
    Route("GET", "/api/calls.csv", api.calls_csv, S),
    Route("GET", "/api/calls/{call_id}", api.get_call, S),
    Route("GET", "/api/agents/{agent_id}/current", api.agent_current, S),
    Route("POST", "/api/dispatch", api.post_dispatch, S),
    Route("DELETE", "/api/dispatch/{dispatch_id}", api.delete_dispatch, S),
    Route("PUT", "/api/callers/{number}/dialect", api.put_dialect, S),
    Route("GET", "/api/tokens", admin.list_tokens, A),
    Route("POST", "/api/tokens", admin.post_token, A),
    Route("DELETE", "/api/tokens/{name}", admin.delete_token, A),
    Route("GET", "/healthz", api.healthz, None),
    Route("GET", "/readyz", api.readyz, None),
)
"""Every route and the role it needs, in one place (the OpenAPI spec and the guard read it too)."""


def create_app(
    *,
    store: CallStoreView,
    live: LiveView,
    access: ApiAccess,
    acd: AcdView | None = None,
    flows: FlowView | None = None,
    dispatcher: Dispatcher | None = None,
    dialects: DialectSetter | None = None,
    metrics: EngineMetrics | None = None,
    ready: Callable[[], bool] = lambda: True,
    draining: Callable[[], bool] = lambda: False,
    clock: Clock | None = None,
    sse_debounce_s: float = 0.25,
    summary_cache_s: float = 2.0,
) -> web.Application:
    """Build the web app. `access` says which tokens and host names it accepts (`server_access(config)`
    for the engine); `acd` and `flows` default to `live` when it is a `LiveState`; `ready` says whether
    SIP is listening and `draining` whether the engine is draining (for /readyz); `metrics` is the
    engine's registry (a new one if None)."""
    if acd is None or flows is None:
        if not isinstance(live, LiveState):
            raise ConfigError("create_app: pass acd= and flows= when live is not an ivr.web.LiveState")
        acd = acd or live
        flows = flows or live
    clock = clock or LoopClock()
    metrics = metrics or EngineMetrics()
    sources = WebSources(
        store=store,
        live=live,
        acd=acd,
        flows=flows,
        metrics=metrics,
        ready=ready,
        clock=clock,
        hub=SseHub(live, store, clock.wall, debounce_s=sse_debounce_s),
        dispatcher=dispatcher,
        dialects=dialects,
        draining=draining,
        summary_cache_s=summary_cache_s,
    )
    metrics.registry.add_collector(lambda: collect_live(sources))

    app = web.Application(middlewares=[access_log_middleware, guard_middleware, error_middleware])
    app[SOURCES] = sources
    app[ACCESS] = access
    roles = {(r.method, r.path): r.role for r in ROUTES}
    app[ROUTE_ROLES] = roles
    app.on_startup.append(_start_hub)
    app.on_shutdown.append(_stop_hub)
    app.on_response_prepare.append(add_security_headers)
    router = app.router
    for route in ROUTES:
        if route.method == "GET":
            router.add_get(route.path, route.handler)  # and HEAD, which the guard treats as GET
        else:
            router.add_route(route.method, route.path, route.handler)
    router.add_static("/static/", STATIC_DIR)
    return app


async def _start_hub(app: web.Application) -> None:
    app[SOURCES].hub.start()


async def _stop_hub(app: web.Application) -> None:
    app[SOURCES].hub.stop()


def collect_live(sources: WebSources) -> None:
    """Refresh the gauges derived from live state, just before a scrape."""
    m = sources.metrics
    snapshot = sources.live.snapshot(sources.clock.wall())
    m.calls_active.set(snapshot.in_ivr + snapshot.in_queue + snapshot.with_agent)
    m.calls_total.labels().value = float(sources.live.calls_started_total)
    m.queue_length.clear()
    m.queue_longest_wait.clear()
    for queue in snapshot.queues:
        m.queue_length.labels(queue.queue).set(queue.waiting)
        m.queue_longest_wait.labels(queue.queue).set(queue.longest_wait_s)
    for state in AgentPresence:
        m.agents.labels(state.value).set(snapshot.agents_by_state.get(state, 0))
