"""A node of workers seen over HTTP as one node (issue 22, `ivr serve --workers N`).

Each worker of a node is an engine process with its own calls; the ACD, the store and the flows are
shared already. What an operator or a supervisor sees and does through worker 0's HTTP port (the node's)
is made node-wide here:

- **Live view.** Every worker streams its own calls in progress to worker 0 (`GET /api/node/calls`, a
  Server-Sent Events stream, pushed on change); worker 0 mirrors them into its `LiveState`
  (`calls_elsewhere`), so the dashboard's live numbers, queues, agents' calls and the SSE stream are the
  node's. The same stream says when the worker's store committed calls, so the dashboard refetches its
  figures for the other workers' calls too. A worker that stops answering drops out of the view until it
  streams again.
- **Metrics.** Worker 0's `/metrics` is the node's: its own exposition merged with every other worker's
  (`ivr.web.nodemetrics`: counters and histograms summed, as one process serving all the calls would
  report them). Each worker's own port still serves that worker's figures alone.
- **Actions on a call** (recording pause/resume, supervise) are forwarded to the worker that holds the
  call; **an agent's log out and log in** to the worker that holds their phone's registration (the one
  that sees its refreshes, so "logged out by choice" sticks there).
- **Prompt recordings** made on the prompt line of any worker are announced to the others, which serve
  them from the next prompt on.

The workers talk to each other with the node's token (made by the supervisor, passed in the worker's
spec, never written; `TokenSource.NODE`): the routes under `/api/node/` answer only to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from ivr.clock import Clock
from ivr.store import Committed
from ivr.web.access import Role, TokenSource
from ivr.web.api import json_body, json_error
from ivr.web.guard import Handler, RouteSpec, add_routes, identity
from ivr.web.live import LiveState
from ivr.web.nodemetrics import merge_expositions
from ivr.web.sources import CallStoreView
from ivr.web.sse import SseHub, format_event

log = structlog.get_logger(__name__)

PUSH_EVERY_S = 0.25
"""A worker pushes its calls at most this often (a burst of changes is one push)."""
KEEPALIVE_S = 15.0
RETRY_S = 1.0
"""Worker 0 follows a worker's stream again this long after it broke (the worker restarting)."""
PEER_TIMEOUT_S = 5.0
"""A forwarded action, a metrics scrape or a lookup at another worker: longer means it is not answering."""
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""One pushed list of calls at most (a worker holds at most `max_calls`: ~1 KB each)."""
NODE_PREFIX = "/api/node/"


@dataclass(slots=True, frozen=True)
class NodeRole:
    """This engine process as a worker of a node: its index, the node's token, the other workers."""

    index: int
    token: str
    peers: tuple[tuple[str, str], ...] = ()
    """(name, HTTP base URL) of every other worker, e.g. ("w1", "http://127.0.0.1:8081")."""

    @property
    def front(self) -> bool:
        """Worker 0 serves the node's dashboard, API and /metrics."""
        return self.index == 0


class NodeParts:
    """What the engine lends the node routes (duck-typed so this module imports no engine code)."""

    def __init__(self, live: LiveState, clock: Clock, store: CallStoreView, *,
                 phone_of: Callable[[str], str | None] | None = None,
                 prompt_recorded: Callable[[str, str], None] | None = None) -> None:
        self.live = live
        self.clock = clock
        self.store = store
        self.phone_of = phone_of
        """The contact of an agent's phone registered with this worker (None: not here)."""
        self.prompt_recorded = prompt_recorded
        """Serve the recording another worker just made of (dialect, prompt id)."""
        self.streams: set[asyncio.Event] = set()
        """The open `/api/node/calls` streams' wake-ups (ended at the app's shutdown)."""
        self.closing = False

    def close_streams(self) -> None:
        self.closing = True
        for wake in self.streams:
            wake.set()


NODE_PARTS = web.AppKey("ivr_web_node_parts", NodeParts)


def _from_node(request: web.Request) -> None:
    if identity(request).source is not TokenSource.NODE:
        raise web.HTTPForbidden(text=json.dumps({"error": "only the node's own workers may use /api/node/"}),
                                content_type="application/json")


async def own_calls(request: web.Request) -> web.StreamResponse:
    """This worker's calls in progress, pushed whenever they change (at most every `PUSH_EVERY_S`)."""
    _from_node(request)
    parts = request.app[NODE_PARTS]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    changed = asyncio.Event()
    changed.set()
    committed = {"started": 0, "finished": 0, "surveys": 0}
    loop = asyncio.get_running_loop()

    def add(done: Committed) -> None:  # on the loop
        committed["started"] += done.calls_started
        committed["finished"] += done.calls_finished
        committed["surveys"] += done.surveys
        changed.set()

    def on_commit(done: Committed) -> None:  # the store's writer thread
        if done.calls_started or done.calls_finished or done.surveys:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(add, done)

    unsubscribe = parts.live.on_change(lambda _change: changed.set())
    unsubscribe_store = parts.store.on_commit(on_commit)
    parts.streams.add(changed)
    try:
        while not parts.closing:
            try:
                async with parts.clock.timeout(KEEPALIVE_S):
                    await changed.wait()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            changed.clear()
            if parts.closing:
                break
            await response.write(format_event("calls", json.dumps(parts.live.own_calls_json(), ensure_ascii=False)))
            if any(committed.values()):
                await response.write(format_event("committed", json.dumps(committed)))
                committed.update(dict.fromkeys(committed, 0))
            await parts.clock.sleep(PUSH_EVERY_S)
    except ConnectionError:
        log.debug("node_stream_closed")
    finally:
        parts.streams.discard(changed)
        unsubscribe()
        unsubscribe_store()
    return response


async def agent_phone(request: web.Request) -> web.Response:
    _from_node(request)
    phone_of = request.app[NODE_PARTS].phone_of
    registered = phone_of is not None and phone_of(request.match_info["agent_id"]) is not None
    return web.json_response({"registered": registered})


async def prompt_recorded(request: web.Request) -> web.Response:
    _from_node(request)
    body = await json_body(request)
    dialect, prompt_id = body.get("dialect"), body.get("prompt_id")
    if not isinstance(dialect, str) or not isinstance(prompt_id, str):
        return json_error(400, "fields 'dialect' and 'prompt_id' must be strings")
    serve = request.app[NODE_PARTS].prompt_recorded
    if serve is not None:
        await asyncio.to_thread(serve, dialect, prompt_id)
    return web.json_response({"dialect": dialect, "prompt_id": prompt_id})


ROUTES: tuple[RouteSpec, ...] = (
    ("GET", "/api/node/calls", own_calls, Role.ADMIN),
    ("GET", "/api/node/agents/{agent_id}/phone", agent_phone, Role.ADMIN),
    ("POST", "/api/node/prompts", prompt_recorded, Role.ADMIN),
)

CALL_ACTIONS = frozenset({
    "/api/calls/{call_id}/recording/pause", "/api/calls/{call_id}/recording/resume", "/api/calls/{call_id}/supervise",
})  # fmt: skip
"""Routes that act on a call in progress: carried out by the worker that holds it."""
PHONE_ACTIONS = frozenset({"/api/agents/{agent_id}/logout", "/api/agents/{agent_id}/login"})
"""Routes that act on an agent's phone registration: carried out by the worker that holds it."""


class NodeFront:
    """Worker 0's side: follows the other workers' calls, merges their metrics, forwards actions."""

    def __init__(self, role: NodeRole, parts: NodeParts, hub: SseHub | None = None) -> None:
        self._role = role
        self._parts = parts
        self._hub = hub
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._followed: dict[str, bool] = {}
        """Workers whose stream is open now."""
        self._seen: set[str] = set()

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._role.token}"}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S))
        return self._session

    def start(self) -> None:
        """Follow every other worker's calls (on the running loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(name, url), name=f"node-follow-{name}")
                       for name, url in self._role.peers]  # fmt: skip

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- the live view ----------------------------------------------------------------------------

    async def _follow(self, name: str, url: str) -> None:
        """Mirror worker `name`'s calls for as long as the node runs; logs only when it comes and goes (while
        the node starts, the other workers start after this one: the first misses are not news)."""
        while True:
            try:
                await self._stream(name, url)
                error = "the stream ended"
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
            if self._followed.pop(name, False):  # a worker stopping or dying: the supervisor says which
                log.info("node_worker_lost", worker=name, error=error)
            elif name not in self._seen:
                log.debug("node_worker_not_yet", worker=name, error=error)
            self._parts.live.calls_elsewhere(name, [])
            await self._parts.clock.sleep(RETRY_S)

    async def _stream(self, name: str, url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=PEER_TIMEOUT_S, sock_read=KEEPALIVE_S * 3)
        async with self._client().get(url + "/api/node/calls", headers=self._headers, timeout=timeout) as response:
            if response.status != 200:
                raise ValueError(f"/api/node/calls answered {response.status}")
            self._followed[name] = True
            self._seen.add(name)
            log.info("node_worker_followed", worker=name)
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    self._on_frame(name, frame)
                if len(buffer) > MAX_FRAME_BYTES:
                    raise ValueError(f"a pushed frame passed {MAX_FRAME_BYTES} bytes")

    def _on_frame(self, name: str, frame: bytes) -> None:
        event, data = "", []
        for line in frame.decode("utf-8").split("\n"):
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        if not data:
            return
        payload = json.loads("\n".join(data))
        if event == "calls":
            if not isinstance(payload, list):
                raise ValueError("pushed calls are not a list")
            self._parts.live.calls_elsewhere(name, [c for c in payload if isinstance(c, Mapping)])
        elif event == "committed" and isinstance(payload, dict) and self._hub is not None:
            self._hub.committed_elsewhere(Committed(
                calls_started=int(payload.get("started", 0)), calls_finished=int(payload.get("finished", 0)),
                surveys=int(payload.get("surveys", 0))))  # fmt: skip

    # -- metrics ----------------------------------------------------------------------------------

    async def metrics(self, own: str) -> str:
        """The node's exposition: this worker's `own` text merged with every other worker's /metrics."""
        texts = await asyncio.gather(*(self._get_text(url + "/metrics") for _name, url in self._role.peers))
        answered = [text for text in texts if text is not None]
        workers = f"ivr_node_workers_scraped {1 + len(answered)}\n"
        header = "# HELP ivr_node_workers_scraped Workers of this node whose figures are in this scrape.\n" \
                 "# TYPE ivr_node_workers_scraped gauge\n"  # fmt: skip
        return merge_expositions([own, *answered]) + header + workers

    async def _get_text(self, url: str) -> str | None:
        try:
            async with self._client().get(url, headers=self._headers) as response:
                if response.status == 200:
                    return await response.text()
                log.warning("node_metrics_refused", url=url, status=response.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("node_metrics_unreachable", url=url, error=str(exc) or type(exc).__name__)
        return None

    # -- actions ----------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Runs after the guard: an action on a call or phone held by another worker is done there."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        target: str | None = None
        if request.method == "POST" and route in CALL_ACTIONS:
            target = self._peer_url(self._parts.live.holder(request.match_info["call_id"]))
        elif request.method == "POST" and route in PHONE_ACTIONS:
            target = await self._phone_holder(request.match_info["agent_id"])
        if target is None:
            return await handler(request)
        return await self._forward(request, target)

    def _peer_url(self, holder: str | None) -> str | None:
        return dict(self._role.peers).get(holder) if holder else None

    async def _phone_holder(self, agent_id: str) -> str | None:
        """The URL of the other worker holding the agent's phone registration (None: this one, or none)."""
        phone_of = self._parts.phone_of
        if phone_of is None or phone_of(agent_id) is not None:
            return None
        for _name, url in self._role.peers:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                async with self._client().get(f"{url}/api/node/agents/{agent_id}/phone", headers=self._headers) as r:
                    if r.status == 200 and (await r.json()).get("registered"):
                        return url
        return None

    async def _forward(self, request: web.Request, url: str) -> web.Response:
        body = await request.read()
        headers = {**self._headers, "Content-Type": request.headers.get("Content-Type", "application/json")}
        log.info("node_action_forwarded", path=request.path, to=url, by=identity(request).name)
        try:
            async with self._client().request(request.method, url + request.rel_url.path_qs, data=body,
                                              headers=headers) as response:  # fmt: skip
                payload = await response.read()
                return web.Response(body=payload, status=response.status,
                                    headers={"Content-Type": response.headers.get("Content-Type", "application/json")})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("node_action_unreachable", path=request.path, to=url, error=str(exc) or type(exc).__name__)
            return json_error(502, f"the worker at {url} that holds this did not answer")

    async def announce_prompt(self, dialect: str, prompt_id: str) -> None:
        """Tell every other worker to serve the recording just made of (dialect, prompt id)."""
        await _tell_all(self._client(), self._role, "/api/node/prompts", {"dialect": dialect, "prompt_id": prompt_id})


async def _tell_all(session: aiohttp.ClientSession, role: NodeRole, path: str, body: dict[str, Any]) -> None:
    async def tell(name: str, url: str) -> None:
        try:
            async with session.post(url + path, json=body, headers={"Authorization": f"Bearer {role.token}"}) as r:
                if r.status != 200:
                    log.warning("node_peer_refused", worker=name, path=path, status=r.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("node_peer_unreachable", worker=name, path=path, error=str(exc) or type(exc).__name__)

    await asyncio.gather(*(tell(name, url) for name, url in role.peers))


def add_node_routes(app: web.Application, role: NodeRole, parts: NodeParts) -> NodeFront:
    """Call right after `create_app`, before the app starts: the node token, the `/api/node/` routes, and
    the front (every worker has one: each may announce a prompt recording; worker 0 also follows the others,
    merges /metrics and forwards actions). The front starts and stops with the app."""
    from ivr.web.api import SOURCES
    from ivr.web.guard import ACCESS

    app[ACCESS].book.add_node_token(role.token)
    app[NODE_PARTS] = parts
    add_routes(app, ROUTES)
    front = NodeFront(role, parts, app[SOURCES].hub)
    if role.front:
        app.middlewares.append(front.middleware)
        app[SOURCES].node_metrics = front.metrics

    async def start(_app: web.Application) -> None:
        if role.front:
            front.start()

    async def shutdown(_app: web.Application) -> None:
        parts.close_streams()

    async def stop(_app: web.Application) -> None:
        await front.aclose()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(stop)
    return front


__all__ = ["NODE_PREFIX", "NodeFront", "NodeParts", "NodeRole", "add_node_routes"]
