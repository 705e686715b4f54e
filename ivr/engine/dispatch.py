"""Emergency cross-region dispatch: the web API's `Dispatcher` over the engine's ACD.

Ops lend the agents of helper sites to a region's queues (`POST /api/dispatch`) and end it
(`DELETE /api/dispatch/{id}`); the web layer records each request, accepted or refused, in the
store's dispatch log. The changes the ACD makes on its own (a dispatch's `until` passing, night
hours starting or ending) are recorded here, from the ACD's events, so the log holds every change.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from ivr.acd import Acd, AcdError, AcdEvent, BackendError, DispatchChanged, DispatchRecord
from ivr.acd.dispatch import NIGHT_ID
from ivr.acd.events import DispatchChange
from ivr.store import DispatchAction, DispatchEntry
from ivr.web import DispatchChangeKind, DispatchChangeView, DispatchRequest, DispatchView, UnknownDispatch

log = structlog.get_logger(__name__)

_KINDS = {change: DispatchChangeKind(change.value) for change in DispatchChange}
_ACD_ACTIONS = {
    DispatchChange.EXPIRED: DispatchAction.EXPIRE,
    DispatchChange.NIGHT_STARTED: DispatchAction.NIGHT_START,
    DispatchChange.NIGHT_ENDED: DispatchAction.NIGHT_END,
}
"""Changes the ACD makes by itself (STARTED and ENDED come from requests the web layer records)."""
_DETAILS = {
    DispatchChange.EXPIRED: "its 'until' passed",
    DispatchChange.NIGHT_STARTED: "night hours began",
    DispatchChange.NIGHT_ENDED: "night hours ended",
}


class DispatchLog(Protocol):
    """Where the ACD's own changes are recorded (`ivr.store.SqlStore` satisfies it)."""

    def log_dispatch(self, entry: DispatchEntry) -> None: ...


def dispatch_view(record: DispatchRecord) -> DispatchView:
    return DispatchView(
        dispatch_id=record.dispatch_id,
        region=record.region,
        queues=record.queues,
        helper_sites=record.helper_sites,
        since=record.started_at,
        until=record.until,
        reason=record.reason,
        requested_by=record.by,
    )


def change_view(change: DispatchChanged) -> DispatchChangeView:
    return DispatchChangeView(_KINDS[change.change], dispatch_view(change.record), change.at)


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

    async def dispatch(self, request: DispatchRequest) -> DispatchView:
        record = await self._acd.dispatch(
            request.region,
            request.queues,
            request.helper_sites,
            request.until,
            reason=request.reason,
            by=request.requested_by,
        )
        return dispatch_view(record)

    async def end_dispatch(self, dispatch_id: str) -> DispatchView:
        try:
            await self._acd.end_dispatch(dispatch_id)
        except BackendError:
            raise
        except AcdError as exc:
            # The command went through the ACD's log, so this node now knows every change before it.
            raise self._why_not_active(dispatch_id) from exc
        ended = self._history(dispatch_id)[-1]
        return dispatch_view(ended.record)

    def active(self) -> list[DispatchView]:
        views = [dispatch_view(r) for r in self._acd.active_dispatches()]
        night = self._history(NIGHT_ID)
        if night and night[-1].change is DispatchChange.NIGHT_STARTED:
            views.append(dispatch_view(night[-1].record))
        return views

    def changes(self) -> list[DispatchChangeView]:
        return [change_view(c) for c in self._acd.dispatch_log()]

    def _history(self, dispatch_id: str) -> list[DispatchChanged]:
        return [c for c in self._acd.dispatch_log() if c.record.dispatch_id == dispatch_id]

    def _why_not_active(self, dispatch_id: str) -> Exception:
        history = self._history(dispatch_id)
        if not history:
            active = ", ".join(r.dispatch_id for r in self._acd.active_dispatches()) or "none"
            return UnknownDispatch(f"no dispatch {dispatch_id!r} (active: {active})")
        if dispatch_id == NIGHT_ID:
            return AcdError(f"dispatch {NIGHT_ID!r} is the night-hours rule of queues.yaml: it cannot be ended here")
        last = history[-1]
        return AcdError(f"dispatch {dispatch_id!r} already {last.change.value} at {last.at.isoformat()}")

    def _records_for_cluster(self) -> bool:
        """Every node applies the same change; one records it: the live node first by name (all
        copies of the log agree on which nodes are live), so a shared store holds it once."""
        me = self._acd.node_id
        return min(self._acd.core.nodes, default=me) >= me

    def _on_acd_event(self, event: AcdEvent) -> None:
        if not isinstance(event, DispatchChanged) or event.change not in _ACD_ACTIONS or event.at < self._since:
            return
        if not self._records_for_cluster():
            return
        assert self._record_to is not None
        change, record = event.change, event.record
        entry = dispatch_view(record).log_entry(_ACD_ACTIONS[change], event.at, detail=_DETAILS[change])
        self._record_to.log_dispatch(entry)
        log.info("dispatch_changed", change=change.value, dispatch_id=record.dispatch_id, region=record.region)


__all__ = ["AcdDispatcher", "DispatchLog", "change_view", "dispatch_view"]
