"""The aiohttp application factory: the dashboard, the JSON API, SSE, /healthz and /metrics.

The app takes its data sources as arguments (see `ivr.web.sources`): the engine wires the real
store, live state, ACD, flow registry, dispatcher and dialect setter; tests pass fakes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ivr.clock import Clock, LoopClock
from ivr.errors import ConfigError
from ivr.web import api
from ivr.web.api import SOURCES, WebSources, error_middleware
from ivr.web.live import LiveState
from ivr.web.metrics import EngineMetrics
from ivr.web.openapi import build_spec
from ivr.web.sources import AcdView, AgentState, CallStoreView, DialectSetter, Dispatcher, FlowView, LiveView
from ivr.web.sse import SseHub

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    *,
    store: CallStoreView,
    live: LiveView,
    acd: AcdView | None = None,
    flows: FlowView | None = None,
    dispatcher: Dispatcher | None = None,
    dialects: DialectSetter | None = None,
    metrics: EngineMetrics | None = None,
    ready: Callable[[], bool] = lambda: True,
    clock: Clock | None = None,
    sse_debounce_s: float = 0.25,
    summary_cache_s: float = 2.0,
) -> web.Application:
    """Build the web app. `acd` and `flows` default to `live` when it is a `LiveState`; `ready` says
    whether SIP is listening (for /healthz); `metrics` is the engine's registry (a new one if None)."""
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
        summary_cache_s=summary_cache_s,
    )
    metrics.registry.add_collector(lambda: collect_live(sources))

    app = web.Application(middlewares=[error_middleware])
    app[SOURCES] = sources
    app.on_startup.append(_start_hub)
    app.on_shutdown.append(_stop_hub)
    spec_text = json.dumps(build_spec(), ensure_ascii=False)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(text=spec_text, content_type="application/json")

    r = app.router
    r.add_get("/", _static_page("index.html"))
    r.add_get("/api/docs", _static_page("docs.html"))
    r.add_get("/api/openapi.json", openapi_json)
    r.add_get("/api/calls", api.list_calls)
    r.add_get("/api/calls.csv", api.calls_csv)
    r.add_get("/api/calls/{call_id}", api.get_call)
    r.add_get("/api/queues", api.list_queues)
    r.add_get("/api/agents", api.list_agents)
    r.add_get("/api/agents/{agent_id}/current", api.agent_current)
    r.add_get("/api/flows", api.list_flows)
    r.add_get("/api/dispatch", api.list_dispatches)
    r.add_post("/api/dispatch", api.post_dispatch)
    r.add_delete("/api/dispatch/{dispatch_id}", api.delete_dispatch)
    r.add_put("/api/callers/{number}/dialect", api.put_dialect)
    r.add_get("/api/reports/summary", api.report_summary)
    r.add_get("/api/events", api.events)
    r.add_get("/healthz", api.healthz)
    r.add_get("/metrics", api.metrics)
    r.add_static("/static/", STATIC_DIR)
    return app


def _static_page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = STATIC_DIR / name

    async def page(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return page


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
    for state in AgentState:
        m.agents.labels(state.value).set(snapshot.agents_by_state.get(state, 0))
