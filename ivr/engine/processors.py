"""The processors of the call event stream (`ivr.engine.events`): one consumer of call facts each.

Each is a callable taking one `CallEvent`; it picks the events it cares about and ignores the rest, and
names them in `EVENTS`, so the stream hands it nothing else. The engine chains them in this order: store
(durable first), live view, metrics, dialect memory, logs.
"""

from __future__ import annotations

from typing import ClassVar

import structlog

from ivr.engine.events import (
    AgentBridged,
    CallAnswered,
    CallEvent,
    CallFinished,
    CallQueued,
    JourneyStepped,
    QueueLeft,
    RecordClosed,
    RecordOpened,
)
from ivr.journey import JourneySink
from ivr.store.dialectworker import DialectWriter
from ivr.web.live import LiveState
from ivr.web.metrics import EngineMetrics

log = structlog.get_logger(__name__)


class StoreProcessor:
    """Records and journeys to the store (which queues the writes and commits them off the loop)."""

    EVENTS: ClassVar[tuple[type, ...]] = (RecordOpened, JourneyStepped, RecordClosed)

    def __init__(self, store: JourneySink) -> None:
        self._store = store

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, RecordOpened):
            self._store.call_started(event.record)
        elif isinstance(event, JourneyStepped):
            self._store.journey_event(event.step)
        elif isinstance(event, RecordClosed):
            self._store.call_finished(event.record)


class LiveViewProcessor:
    """The dashboard's live view: calls in progress, where they are in their flow, queue, agent."""

    EVENTS: ClassVar[tuple[type, ...]] = (CallAnswered, JourneyStepped, CallQueued, AgentBridged, CallFinished)

    def __init__(self, live: LiveState) -> None:
        self._live = live

    def __call__(self, event: CallEvent) -> None:
        live = self._live
        if isinstance(event, CallAnswered):
            live.call_started(event.call_id, event.caller, event.dialed, event.at, dialect=event.dialect,
                              flow_id=event.flow_id)
        elif isinstance(event, JourneyStepped):
            step = event.step
            if step.kind == "node_entered":
                live.call_progressed(step.call_id, node=step.node)
            elif _sets_dialect(event):
                live.call_progressed(step.call_id, dialect=str(step.data.get("value", "")))
        elif isinstance(event, CallQueued):
            live.call_enqueued(event.call_id, event.queue, event.at, context=event.context, priority=event.priority)
        elif isinstance(event, AgentBridged):
            live.call_answered(event.call_id, event.agent_id, event.at)
        elif isinstance(event, CallFinished):
            live.call_ended(event.call_id)


class MetricsProcessor:
    """Prometheus counters fed by call facts (the rest is pulled from the live view at scrape)."""

    EVENTS: ClassVar[tuple[type, ...]] = (CallAnswered, JourneyStepped, QueueLeft, RecordClosed)

    def __init__(self, metrics: EngineMetrics) -> None:
        self._metrics = metrics

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            self._metrics.calls_total.inc()
        elif isinstance(event, JourneyStepped) and event.step.breakpoint:
            self._metrics.errors.labels(event.step.kind).inc()
        elif isinstance(event, QueueLeft):
            self._metrics.queue_wait_seconds.labels(event.queue).observe(event.wait_s)
        elif isinstance(event, RecordClosed) and event.record.outcome is not None:
            self._metrics.calls_ended.labels(event.record.outcome.value).inc()


class DialectMemoryProcessor:
    """Remembers a caller's dialect for their next call when the flow set it (a menu choice, English
    by key or speech); a dialect only defaulted is not remembered."""

    EVENTS: ClassVar[tuple[type, ...]] = (JourneyStepped, RecordClosed)

    def __init__(self, memory: DialectWriter) -> None:
        self._memory = memory
        self._dialect_set: set[str] = set()
        """Calls in progress in which the flow set the caller's dialect."""

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, JourneyStepped) and _sets_dialect(event):
            self._dialect_set.add(event.call_id)
        elif isinstance(event, RecordClosed) and event.call_id in self._dialect_set:
            self._dialect_set.discard(event.call_id)
            record = event.record
            if record.caller and record.dialect:
                self._memory.set(record.caller, record.dialect)


class LogProcessor:
    """Log lines for the call facts no lower layer logs itself."""

    EVENTS: ClassVar[tuple[type, ...]] = (CallAnswered, AgentBridged, QueueLeft)

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            log.info("call_answered", flow=event.flow_id, dialect=event.dialect, caller_verified=event.caller_verified)
        elif isinstance(event, AgentBridged):
            log.info("call_bridged", agent=event.agent_id, queue=event.queue)
        elif isinstance(event, QueueLeft):
            log.info("queue_left", queue=event.queue, outcome=event.kind.value, wait_s=round(event.wait_s, 2))


def _sets_dialect(event: JourneyStepped) -> bool:
    return event.step.kind == "variable_set" and event.step.data.get("name") == "dialect"


__all__ = ["DialectMemoryProcessor", "LiveViewProcessor", "LogProcessor", "MetricsProcessor", "StoreProcessor"]
