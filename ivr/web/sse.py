"""Server-Sent Events for the dashboard: live state and "calls committed" pushes, debounced.

The hub listens to `LiveView.on_change` (loop thread) and `CallStoreView.on_commit` (the store's
writer thread) and, at most once per `debounce_s`, broadcasts:

- `event: live`  — the `LiveSnapshot` as JSON (calls in IVR/queues, agents by state, flows);
- `event: calls` — `{"started": n, "finished": n, "surveys": n}` since the last push, so the page
  refetches its summary figures only when there is something new.

Each client keeps only the latest payload per event name: a slow client gets fresh state, never a
backlog. A comment line every `keepalive_s` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from ivr.logredact import mask_number
from ivr.store import Committed
from ivr.web.access import Role
from ivr.web.guard import identity
from ivr.web.sources import CallStoreView, LiveView

log = structlog.get_logger(__name__)


class _Client:
    __slots__ = ("masked", "pending", "wake")

    def __init__(self, *, masked: bool = False) -> None:
        self.masked = masked  # a viewer's stream: callers' numbers masked (full numbers are a supervisor's)
        self.pending: dict[str, str] = {}
        self.wake = asyncio.Event()

    def offer(self, event: str, data: str) -> None:
        self.pending[event] = data
        self.wake.set()


def format_event(event: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


class SseHub:
    def __init__(
        self,
        live: LiveView,
        store: CallStoreView | None,
        wall: Callable[[], datetime],
        *,
        debounce_s: float = 0.25,
        keepalive_s: float = 15.0,
    ) -> None:
        self._live = live
        self._store = store
        self._wall = wall
        self._debounce_s = debounce_s
        self._keepalive_s = keepalive_s
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._live_timer: asyncio.TimerHandle | None = None
        self._calls_timer: asyncio.TimerHandle | None = None
        self._calls_pending: dict[str, int] = {"started": 0, "finished": 0, "surveys": 0}
        self._closing = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        """Subscribe to the sources; call on the running loop (the app's on_startup)."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe.append(self._live.on_change(self._live_changed))
        if self._store is not None:
            self._unsubscribe.append(self._store.on_commit(self._store_committed))

    def stop(self) -> None:
        """Unsubscribe and end every stream (the app's on_shutdown)."""
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for timer in (self._live_timer, self._calls_timer):
            if timer is not None:
                timer.cancel()
        for client in self._clients:
            client.wake.set()

    def live_json(self, *, masked: bool = False) -> str:
        """The live snapshot; `masked`: callers' numbers as the logs show them (a viewer's wall screen)."""
        snapshot = self._live.snapshot(self._wall()).to_json()
        if masked:
            for call in snapshot.get("recent", ()):
                call["caller"] = mask_number(call["caller"])
        return json.dumps(snapshot, ensure_ascii=False)

    # --- sources -> debounced broadcasts --------------------------------------------------------

    def _live_changed(self, _change: Any) -> None:
        # Every call changes the live state three or four times: with no dashboard open there is nobody
        # to push to (a client gets a fresh snapshot when it connects), and a cross-thread hand-off
        # per change woke the loop for nothing (issue 22). The live state changes on the loop.
        if self._clients:
            self._schedule_live()

    def _store_committed(self, committed: Committed) -> None:
        # The writer thread calls this per commit: with no stream open, no hand-off (a loop wake-up, a timer). A
        # stream opened later fetches the figures itself; a count it misses from before it opened is no loss.
        if self._clients:
            self._threadsafe(self._add_calls, committed)

    def committed_elsewhere(self, committed: Committed) -> None:
        """Another worker of the node committed calls (`ivr.web.node`): the page refetches its figures too."""
        self._store_committed(committed)

    def _threadsafe(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or self._closing:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed under us during shutdown
            log.debug("sse_loop_closed")

    def _schedule_live(self) -> None:
        if self._live_timer is None and not self._closing and self._loop is not None:
            self._live_timer = self._loop.call_later(self._debounce_s, self._push_live)

    def _push_live(self) -> None:
        self._live_timer = None
        if self._clients:
            full = self.live_json()
            masked = self.live_json(masked=True) if any(c.masked for c in self._clients) else full
            for client in self._clients:
                client.offer("live", masked if client.masked else full)

    def _add_calls(self, committed: Committed) -> None:
        self._calls_pending["started"] += committed.calls_started
        self._calls_pending["finished"] += committed.calls_finished
        self._calls_pending["surveys"] += committed.surveys
        if self._calls_timer is None and not self._closing and self._loop is not None:
            self._calls_timer = self._loop.call_later(self._debounce_s, self._push_calls)

    def _push_calls(self) -> None:
        self._calls_timer = None
        counts, self._calls_pending = self._calls_pending, dict.fromkeys(self._calls_pending, 0)
        if any(counts.values()):
            self._broadcast("calls", json.dumps(counts))

    def _broadcast(self, event: str, data: str) -> None:
        for client in self._clients:
            client.offer(event, data)

    # --- the stream -----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        client = _Client(masked=not identity(request).role.covers(Role.SUPERVISOR))
        client.offer("live", self.live_json(masked=client.masked))
        self._clients.add(client)
        try:
            await response.write(b"retry: 2000\n\n")
            while not self._closing:
                try:
                    async with asyncio.timeout(self._keepalive_s):
                        await client.wake.wait()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                client.wake.clear()
                pending, client.pending = client.pending, {}
                for event, data in pending.items():
                    await response.write(format_event(event, data))
        except (ConnectionResetError, ConnectionError):
            log.debug("sse_client_gone")
        finally:
            self._clients.discard(client)
        return response
