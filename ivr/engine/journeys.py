"""Fans a call's journey out to the store (durable) and the live view (dashboard, metrics)."""

from __future__ import annotations

from ivr.journey import CallRecord, JourneyEvent, JourneySink
from ivr.voice import DialectMemory
from ivr.web.live import LiveState
from ivr.web.metrics import EngineMetrics


class EngineJourneySink:
    """The interpreter's one sink: every event to the store, progress to the live view."""

    def __init__(
        self, store: JourneySink, live: LiveState, metrics: EngineMetrics, dialects: DialectMemory | None
    ) -> None:
        self._store = store
        self._live = live
        self._metrics = metrics
        self._dialects = dialects
        self._dialect_set: set[str] = set()
        """Calls in which the flow set the caller's dialect (a menu choice, English by key or speech)."""

    def call_started(self, record: CallRecord) -> None:
        self._store.call_started(record)

    def journey_event(self, event: JourneyEvent) -> None:
        self._store.journey_event(event)
        if event.kind == "node_entered":
            self._live.call_progressed(event.call_id, node=event.node)
        elif event.kind == "variable_set" and event.data.get("name") == "dialect":
            self._dialect_set.add(event.call_id)
            self._live.call_progressed(event.call_id, dialect=str(event.data.get("value", "")))
        if event.breakpoint:
            self._metrics.errors.labels(event.kind).inc()

    def call_finished(self, record: CallRecord) -> None:
        self._store.call_finished(record)
        if record.call_id in self._dialect_set:
            self._dialect_set.discard(record.call_id)
            if self._dialects is not None and record.caller and record.dialect:
                self._dialects.set(record.caller, record.dialect)
