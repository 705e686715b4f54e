"""Emergency cross-region dispatch: the web API's `Dispatcher` over the engine's ACD.

Ops lend the agents of helper sites to a region's queues (`POST /api/dispatch`) and end it
(`DELETE /api/dispatch/{id}`); the web layer records each request, accepted or refused, in the
store's dispatch log. The changes the ACD makes on its own (a dispatch's `until` passing, night
hours starting or ending) are recorded here, from the ACD's events, so the log holds every change.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from ivr.acd import Acd, AcdError, AcdEvent, BackendError
from ivr.acd.dispatch import NIGHT_ID
from ivr.dispatching import Dispatch, DispatchChange, DispatchChanged, DispatchEntry, DispatchRequest
from ivr.web import UnknownDispatch

log = structlog.get_logger(__name__)

_DETAILS = {
    DispatchChange.EXPIRED: "its 'until' passed",
    DispatchChange.NIGHT_STARTED: "night hours began",
    DispatchChange.NIGHT_ENDED: "night hours ended",
}
"""Changes the ACD makes by itself (STARTED and ENDED come from requests the web layer records)."""


class DispatchLog(Protocol):
    """Where the ACD's own changes are recorded (`ivr.store.SqlStore` satisfies it)."""

    def log_dispatch(self, entry: DispatchEntry) -> None: ...


class AcdDispatcher:
    """`ivr.web.Dispatcher` over an `Acd` (memory or Redis backend: the same commands either way)."""

    def __init__(self, acd: Acd, record_to: DispatchLog | None = None) -> None:
        """With `record_to`, the ACD's own changes (expiry, night hours) are logged there; create the
        dispatcher before `acd.start()` to also catch night hours already on at start-up."""
        self._acd = acd
        self._record_to = record_to
        self._since = acd.clock.wall()
        """Changes older than this are a shared log's history replayed at start: recorded already."""
        if record_to is not None:
            acd.add_listener(self._on_acd_event)

    async def dispatch(self, request: DispatchRequest) -> Dispatch:
        return await self._acd.dispatch(request)

    async def end_dispatch(self, dispatch_id: str) -> Dispatch:
        try:
            await self._acd.end_dispatch(dispatch_id)
        except BackendError:
            raise
        except AcdError as exc:
            # The command went through the ACD's log, so this node now knows every change before it.
            raise self._why_not_active(dispatch_id) from exc
        return self._history(dispatch_id)[-1].dispatch

    def active(self) -> list[Dispatch]:
        views = self._acd.active_dispatches()
        night = self._history(NIGHT_ID)
        if night and night[-1].kind is DispatchChange.NIGHT_STARTED:
            views.append(night[-1].dispatch)
        return views

    def changes(self) -> list[DispatchChanged]:
        return self._acd.dispatch_log()

    def _history(self, dispatch_id: str) -> list[DispatchChanged]:
        return [c for c in self._acd.dispatch_log() if c.dispatch.dispatch_id == dispatch_id]

    def _why_not_active(self, dispatch_id: str) -> Exception:
        history = self._history(dispatch_id)
        if not history:
            active = ", ".join(r.dispatch_id for r in self._acd.active_dispatches()) or "none"
            return UnknownDispatch(f"no dispatch {dispatch_id!r} (active: {active})")
        if dispatch_id == NIGHT_ID:
            return AcdError(f"dispatch {NIGHT_ID!r} is the night-hours rule of queues.yaml: it cannot be ended here")
        last = history[-1]
        return AcdError(f"dispatch {dispatch_id!r} already {last.kind.past_tense} at {last.at.isoformat()}")

    def _records_for_cluster(self) -> bool:
        """Every node applies the same change; one records it: the live node first by name (all
        copies of the log agree on which nodes are live), so a shared store holds it once."""
        me = self._acd.node_id
        return min(self._acd.core.nodes, default=me) >= me

    def _on_acd_event(self, event: AcdEvent) -> None:
        if not isinstance(event, DispatchChanged) or event.kind not in _DETAILS or event.at < self._since:
            return
        if not self._records_for_cluster():
            return
        assert self._record_to is not None
        change, dispatch = event.kind, event.dispatch
        self._record_to.log_dispatch(dispatch.log_entry(change, event.at, detail=_DETAILS[change]))
        log.info("dispatch_changed", change=change.past_tense, dispatch_id=dispatch.dispatch_id, region=dispatch.region)


__all__ = ["AcdDispatcher", "DispatchLog"]
