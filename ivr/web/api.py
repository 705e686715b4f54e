"""The JSON API handlers. Each reads its sources from `request.app[SOURCES]`; store reads run in a thread.

Errors are JSON `{"error": "..."}` with a message naming the parameter at fault: 400 for bad input,
404 for an unknown call, agent or dispatch, 409 for a dispatch change the ACD refused (unknown region,
queue or site; already ended), 503 when a source is not wired.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from ivr.clock import Clock
from ivr.errors import IvrError
from ivr.journey import Direction, Outcome
from ivr.store import (
    CSV_COLUMNS,
    BadQuery,
    CallQuery,
    DispatchAction,
    DispatchEntry,
    StoreClosed,
    StoreError,
    Summary,
    detail_to_json,
    dispatch_to_json,
    event_to_json,
    parse_time,
    record_to_csv_row,
    record_to_json,
)
from ivr.web.errors import UnknownDispatch
from ivr.web.guard import identity
from ivr.web.metrics import EngineMetrics
from ivr.web.sources import (
    AcdView,
    AgentPresence,
    CallStoreView,
    DialectSetter,
    Dispatcher,
    DispatchRequest,
    FlowView,
    LiveView,
)
from ivr.web.sse import SseHub

log = structlog.get_logger(__name__)

CSV_PAGE = 1000
_CALLER = re.compile(r"^\+?[0-9*#]{1,32}$")
_DIALECT = re.compile(r"^[a-z]{2,8}([-_][a-z0-9]{1,8})*$")
MAX_DISPATCH_NAMES = 100
MAX_DISPATCH_LOG = 1000
DISPATCH_FLUSH_TIMEOUT_S = 2.0
DISPATCH_FIELDS = ("region", "queues", "helper_sites", "until", "reason", "requested_by")
_NO_DISPATCHER = "emergency dispatch is not available on this engine (no ACD configured)"


@dataclass(slots=True)
class WebSources:
    """Everything the handlers read or ask, wired once by `create_app`."""

    store: CallStoreView
    live: LiveView
    acd: AcdView
    flows: FlowView
    metrics: EngineMetrics
    ready: Callable[[], bool]
    """The engine has started: SIP is listening (/readyz; `draining` overrides it)."""
    clock: Clock
    hub: SseHub
    dispatcher: Dispatcher | None = None
    dialects: DialectSetter | None = None
    draining: Callable[[], bool] = lambda: False
    """The engine is draining (SIGTERM): /readyz says so, so a load balancer stops sending calls."""
    summary_cache_s: float = 2.0
    node_metrics: Callable[[str], Awaitable[str]] | None = None
    """A node of workers: worker 0's /metrics merges this process's exposition with the others' (`ivr.web.node`)."""
    _summaries: dict[tuple[str, str], tuple[float, asyncio.Task[Summary]]] = field(default_factory=dict)


SOURCES = web.AppKey("ivr_web_sources", WebSources)


def _sources(request: web.Request) -> WebSources:
    return request.app[SOURCES]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad input → 400, a closed store → 503, a bug → 500 (logged, counted); all as JSON."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except BadQuery as exc:
        return json_error(400, str(exc))
    except StoreClosed as exc:
        return json_error(503, str(exc))
    except StoreError as exc:
        return json_error(400, str(exc))
    except Exception:  # the request boundary: log with the cause, answer 500, keep serving
        log.exception("http_handler_failed", path=request.path, method=request.method)
        request.app[SOURCES].metrics.errors.labels(kind="http").inc()
        return json_error(500, "internal error (logged)")


# --- calls -----------------------------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise BadQuery(f"{name} must be an integer, got {text!r}") from exc


def _time_param(request: web.Request, name: str, now: datetime) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_time(text, now)
    except OverflowError:  # `99999999d` is a valid span, but not a date there ever was
        raise BadQuery(f"{name} {text!r} reaches beyond the dates this server can represent") from None


def call_query(request: web.Request, now: datetime) -> CallQuery:
    """A `CallQuery` from the query string (the filters and paging of GET /api/calls)."""
    q = request.query
    outcome_text = q.get("outcome") or None
    outcome: Outcome | None = None
    in_progress: bool | None = None
    if outcome_text == "in-progress":
        in_progress = True
    elif outcome_text is not None:
        try:
            outcome = Outcome(outcome_text)
        except ValueError as exc:
            valid = ", ".join([o.value for o in Outcome] + ["in-progress"])
            raise BadQuery(f"outcome must be one of {valid}; got {outcome_text!r}") from exc
    direction_text = q.get("direction") or None
    try:
        direction = None if direction_text is None else Direction(direction_text)
    except ValueError:
        raise BadQuery(f"direction must be inbound or outbound; got {direction_text!r}") from None
    return CallQuery(
        since=_time_param(request, "since", now),
        until=_time_param(request, "until", now),
        intent=q.get("intent") or None,
        queue=q.get("queue") or None,
        outcome=outcome,
        in_progress=in_progress,
        dialect=q.get("dialect") or None,
        caller=q.get("caller") or None,
        node_id=q.get("node_id") or None,
        direction=direction,
        limit=_int_param(request, "limit", 50),
        offset=_int_param(request, "offset", 0),
        cursor=q.get("cursor") or None,
    )


async def list_calls(request: web.Request) -> web.Response:
    src = _sources(request)
    query = call_query(request, src.clock.wall())
    page = await asyncio.to_thread(src.store.list_calls, query)
    return web.json_response(
        {
            "calls": [record_to_json(r, node=page.nodes.get(r.call_id)) for r in page.records],
            "next_cursor": page.next_cursor,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


async def get_call(request: web.Request) -> web.Response:
    src = _sources(request)
    call_id = request.match_info["call_id"]
    detail = await asyncio.to_thread(src.store.get_call, call_id)
    if detail is None:
        return json_error(404, f"no call with id {call_id!r}")
    return web.json_response(detail_to_json(detail))


CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: str) -> str:
    """A cell a spreadsheet will not run: one starting like a formula (`=HYPERLINK(..)`, `+86...`,
    `@SUM`, a tab or CR) gets a leading apostrophe, as OWASP's CSV-injection advice says."""
    return "'" + cell if cell.startswith(CSV_FORMULA_START) else cell


async def calls_csv(request: web.Request) -> web.StreamResponse:
    """Every call matching the filters, as CSV (UTF-8 with BOM so spreadsheets read Chinese)."""
    src = _sources(request)
    query = replace(call_query(request, src.clock.wall()), limit=CSV_PAGE, offset=0, cursor=None)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="calls.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    while True:
        page = await asyncio.to_thread(src.store.list_calls, query)
        writer.writerows([csv_safe(cell) for cell in record_to_csv_row(r)] for r in page.records)
        await response.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            break
        query = replace(query, cursor=page.next_cursor)
    await response.write_eof()
    return response


# --- queues, agents, flows -------------------------------------------------------------------------


async def list_queues(request: web.Request) -> web.Response:
    src = _sources(request)
    return web.json_response({"queues": [q.to_json() for q in src.acd.queues(src.clock.wall())]})


async def list_agents(request: web.Request) -> web.Response:
    agents = _sources(request).acd.agents()
    by_state = {s.value: 0 for s in AgentPresence}
    for agent in agents:
        by_state[agent.state.value] += 1
    return web.json_response({"agents": [a.to_json() for a in agents], "by_state": by_state})


async def agent_current(request: web.Request) -> web.Response:
    """The agent's screen-pop: the call on hand, what the IVR learned, and the journey so far."""
    src = _sources(request)
    agent_id = request.match_info["agent_id"]
    agent = src.acd.agent(agent_id)
    if agent is None:
        return json_error(404, f"no agent with id {agent_id!r}")
    call = src.acd.current_call(agent_id, src.clock.wall())
    body: dict[str, Any] = {"agent": agent.to_json(), "call": None, "record": None, "journey": []}
    if call is not None:
        body["call"] = call.to_json()
        detail = await asyncio.to_thread(src.store.get_call, call.call_id)
        if detail is not None:
            body["record"] = record_to_json(detail.record)
            body["journey"] = [event_to_json(e) for e in detail.journey]
    body["breakpoints"] = [e for e in body["journey"] if e["breakpoint"]]
    return web.json_response(body)


async def list_flows(request: web.Request) -> web.Response:
    return web.json_response({"flows": [f.to_json() for f in _sources(request).flows.flows()]})


# --- actions ---------------------------------------------------------------------------------------


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadQuery(f"request body must be a JSON object: {exc}") from exc
    if not isinstance(body, dict):
        raise BadQuery("request body must be a JSON object")
    return body


def str_field(body: dict[str, Any], name: str, *, required: bool = False, max_len: int = 200) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadQuery(f"field {name!r} must be a {'non-empty ' if required else ''}string")
    if len(value) > max_len:
        raise BadQuery(f"field {name!r} must be at most {max_len} characters, got {len(value)}")
    return value.strip()


def _names_field(body: dict[str, Any], name: str, *, required: bool) -> tuple[str, ...]:
    """A list of ids (sites, queues): non-empty strings, duplicates dropped, order kept."""
    value = body.get(name)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadQuery(f"field {name!r} must be a list of non-empty strings, got {value!r}")
    if required and not value:
        raise BadQuery(f"field {name!r} must name at least one site")
    if len(value) > MAX_DISPATCH_NAMES:
        raise BadQuery(f"field {name!r} names {len(value)} ids, at most {MAX_DISPATCH_NAMES} are allowed")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _until_field(body: dict[str, Any]) -> datetime | None:
    value = body.get("until")
    if value is None:
        return None
    expected = "an ISO-8601 date-time with a time zone (2026-07-01T18:00:00+08:00) or null"
    if not isinstance(value, str):
        raise BadQuery(f"field 'until' must be {expected}, got {value!r}")
    try:
        until = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadQuery(f"field 'until' must be {expected}, got {value!r}") from exc
    if until.tzinfo is None:
        raise BadQuery(f"field 'until' needs a time zone (like +08:00 or Z), got {value!r}")
    return until


def dispatch_request(body: dict[str, Any], requested_by: str) -> DispatchRequest:
    """The body of POST /api/dispatch, checked field by field (unknown fields are refused too).
    `requested_by` is the authenticated token's name: one in the body (older clients) is ignored."""
    unknown = sorted(set(body) - set(DISPATCH_FIELDS))
    if unknown:
        raise BadQuery(f"unknown field {unknown[0]!r} in dispatch request (fields: {', '.join(DISPATCH_FIELDS)})")
    return DispatchRequest(
        region=str_field(body, "region", required=True),
        helper_sites=_names_field(body, "helper_sites", required=True),
        queues=_names_field(body, "queues", required=False),
        until=_until_field(body),
        reason=str_field(body, "reason", max_len=1000),
        requested_by=requested_by,
    )


def _log_dispatch(src: WebSources, entry: DispatchEntry) -> None:
    src.store.log_dispatch(entry)
    log.info(
        "dispatch_change_requested",
        action=entry.action.value,
        dispatch_id=entry.dispatch_id,
        region=entry.region,
        accepted=entry.accepted,
        requested_by=entry.requested_by,
        detail=entry.detail,
    )


async def post_dispatch(request: web.Request) -> web.Response:
    """Lend helper sites' agents to a region's queues; every attempt, refused or not, is logged."""
    src = _sources(request)
    asked = dispatch_request(await json_body(request), identity(request).name)
    now = src.clock.wall()
    entry = DispatchEntry(
        at=now,
        action=DispatchAction.START,
        accepted=False,
        region=asked.region,
        queues=asked.queues,
        helper_sites=asked.helper_sites,
        until=asked.until,
        reason=asked.reason,
        requested_by=asked.requested_by,
    )
    status, message = 0, ""
    if asked.until is not None and asked.until <= now:
        status, message = 400, f"field 'until' ({asked.until.isoformat()}) is not in the future (now {now.isoformat()})"
    elif src.dispatcher is None:
        status, message = 503, _NO_DISPATCHER
    else:
        try:
            view = await src.dispatcher.dispatch(asked)
        except IvrError as exc:
            status, message = 409, str(exc)
        else:
            _log_dispatch(src, view.log_entry(DispatchAction.START, now))
            response = web.json_response(view.to_json(), status=201)
            response.headers["Location"] = f"/api/dispatch/{view.dispatch_id}"
            return response
    _log_dispatch(src, replace(entry, detail=message))
    return json_error(status, message)


async def delete_dispatch(request: web.Request) -> web.Response:
    """End a dispatch now (the borrowed agents go back to their own queues); logged, refused or not."""
    src = _sources(request)
    dispatch_id = request.match_info["dispatch_id"]
    by = identity(request).name
    entry = DispatchEntry(
        at=src.clock.wall(), action=DispatchAction.END, accepted=False, dispatch_id=dispatch_id, requested_by=by
    )
    if src.dispatcher is None:
        status, message = 503, _NO_DISPATCHER
    else:
        try:
            view = await src.dispatcher.end_dispatch(dispatch_id)
        except UnknownDispatch as exc:
            status, message = 404, str(exc)
        except IvrError as exc:
            status, message = 409, str(exc)
        else:
            _log_dispatch(src, replace(view.log_entry(DispatchAction.END, entry.at), requested_by=by))
            return web.json_response({**view.to_json(), "ended_at": entry.at.isoformat()})
    _log_dispatch(src, replace(entry, detail=message))
    return json_error(status, message)


def _dispatches_written(store: CallStoreView, limit: int) -> list[DispatchEntry]:
    """The latest log entries, including those this engine just queued (ops read their own writes)."""
    if not store.flush(DISPATCH_FLUSH_TIMEOUT_S):
        log.warning("dispatch_log_behind", timeout_s=DISPATCH_FLUSH_TIMEOUT_S)
    return store.dispatches(limit)


async def list_dispatches(request: web.Request) -> web.Response:
    """Dispatches in force, the ACD's changes since start, and the recorded log (newest first)."""
    src = _sources(request)
    limit = _int_param(request, "limit", 50)
    if not 1 <= limit <= MAX_DISPATCH_LOG:
        raise BadQuery(f"limit must be 1..{MAX_DISPATCH_LOG}, got {limit}")
    if src.dispatcher is None:
        return json_error(503, _NO_DISPATCHER)
    entries = await asyncio.to_thread(_dispatches_written, src.store, limit)
    return web.json_response(
        {
            "active": [d.to_json() for d in src.dispatcher.active()],
            "changes": [c.to_json() for c in src.dispatcher.changes()],
            "log": [dispatch_to_json(e) for e in entries],
        }
    )


async def put_dialect(request: web.Request) -> web.Response:
    src = _sources(request)
    caller = request.match_info["number"]
    if not _CALLER.match(caller):
        return json_error(400, f"caller number {caller!r} must be 1-32 digits (optionally +, *, #)")
    dialect = str_field(await json_body(request), "dialect", required=True)
    if not _DIALECT.match(dialect):
        return json_error(400, f"dialect {dialect!r} must be a code like cmn, yue, hak, nan")
    if src.dialects is None:
        return json_error(503, "caller dialects are not available on this engine (no setter wired)")
    try:
        await src.dialects.set_dialect(caller, dialect)
    except IvrError as exc:
        return json_error(400, str(exc))
    log.info("caller_dialect_set", caller=caller, dialect=dialect, by=identity(request).name)
    return web.json_response({"caller": caller, "dialect": dialect})


# --- reports, health, metrics ----------------------------------------------------------------------


async def report_summary(request: web.Request) -> web.Response:
    src = _sources(request)
    now = src.clock.wall()
    since = _time_param(request, "since", now) or parse_time("1d", now)
    until = _time_param(request, "until", now) or now
    if until <= since:
        raise BadQuery(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    summary = await _cached_summary(
        src, (request.query.get("since", ""), request.query.get("until", "")), since, until
    )
    return web.json_response(summary.to_json())


async def _cached_summary(src: WebSources, key: tuple[str, str], since: datetime, until: datetime) -> Summary:
    """One summary computation per window per `summary_cache_s`, shared by concurrent requests."""
    now = src.clock.now()
    cached = src._summaries.get(key)
    if cached is None or cached[0] <= now or (cached[1].done() and cached[1].exception() is not None):
        task = asyncio.ensure_future(asyncio.to_thread(src.store.summary, since, until))
        src._summaries = {k: v for k, v in src._summaries.items() if v[0] > now}
        src._summaries[key] = cached = (now + src.summary_cache_s, task)
    return await asyncio.shield(cached[1])


async def healthz(_request: web.Request) -> web.Response:
    """Alive: the process answers HTTP (a service manager restarts it when this stops answering)."""
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for calls: 503 while starting or draining, so a load balancer sends calls elsewhere."""
    src = _sources(request)
    if not src.ready():
        return web.json_response({"status": "starting"}, status=503)
    if src.draining():  # asked only once started: before, the engine has nothing to drain
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    src = _sources(request)
    text = src.metrics.render()
    if src.node_metrics is not None:
        text = await src.node_metrics(text)
    return web.Response(
        body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def events(request: web.Request) -> web.StreamResponse:
    return await _sources(request).hub.handle(request)
