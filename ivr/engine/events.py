"""One stream of what happens to calls, fanned out to processors (store, live view, metrics, memory, logs).

Every fact of a call is one typed `CallEvent`, emitted once, where it happens (the engine answering,
the interpreter's journey, the queue handoff). `CallEvents` hands each event to its processors in
order, like structlog's processor chain: the chain is built once, at start-up, and adding a consumer
(outbound results, a recording index, webhooks) is adding a processor, not another feed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ivr.call import QueueOutcomeKind
from ivr.journey import CallRecord, JourneyEvent


@dataclass(slots=True, frozen=True)
class CallAnswered:
    """The engine answered a call and is about to run its flow."""

    call_id: str
    caller: str
    dialed: str
    flow_id: str
    dialect: str
    """The dialect the caller is greeted in (remembered from an earlier call, or the flow's default)."""
    at: datetime
    caller_verified: bool = False
    """A trusted trunk asserted the caller's number (P-Asserted-Identity); otherwise it is From's, unchecked."""


@dataclass(slots=True, frozen=True)
class RecordOpened:
    """The interpreter opened the call's record."""

    record: CallRecord

    @property
    def call_id(self) -> str:
        return self.record.call_id


@dataclass(slots=True, frozen=True)
class JourneyStepped:
    """One step of the call's journey (node entered, input, intent, breakpoint...)."""

    step: JourneyEvent

    @property
    def call_id(self) -> str:
        return self.step.call_id


@dataclass(slots=True, frozen=True)
class RecordClosed:
    """The interpreter closed the call's record (outcome, dialect, times)."""

    record: CallRecord

    @property
    def call_id(self) -> str:
        return self.record.call_id


@dataclass(slots=True, frozen=True)
class CallQueued:
    """The caller is waiting in a human queue."""

    call_id: str
    queue: str
    at: datetime
    priority: int = 0
    context: Mapping[str, str] = field(default_factory=dict)
    """What the agent will see (intent, transcript, breakpoint...)."""


@dataclass(slots=True, frozen=True)
class AgentBridged:
    """An agent answered and is talking to the caller."""

    call_id: str
    agent_id: str
    queue: str
    at: datetime


@dataclass(slots=True, frozen=True)
class QueueLeft:
    """The caller's wait in a queue is over (answered and done, callback, overflow...)."""

    call_id: str
    queue: str
    kind: QueueOutcomeKind
    wait_s: float


@dataclass(slots=True, frozen=True)
class CallFinished:
    """The call is over and released (both legs down, flow done)."""

    call_id: str


CallEvent = (
    CallAnswered | RecordOpened | JourneyStepped | RecordClosed | CallQueued | AgentBridged | QueueLeft | CallFinished
)
Processor = Callable[[CallEvent], None]
"""Takes one event; must not block (a store queues its writes and commits off the event loop). A processor
with an `EVENTS` attribute (a tuple of event types) is handed only those; one without, every event."""


class CallEvents:
    """The engine's call event stream: `emit` hands each event to every processor that takes it, in order."""

    def __init__(self, processors: Sequence[Processor]) -> None:
        self._processors = tuple(processors)
        self._routes: dict[type, tuple[Processor, ...]] = {}
        """Event type -> the processors that take it, in order (one entry per event type: bounded)."""

    def emit(self, event: CallEvent) -> None:
        kind = type(event)
        route = self._routes.get(kind)
        if route is None:  # once per event type: a call's 8 events reach ~24 processors, not 40
            route = self._routes[kind] = tuple(p for p in self._processors if _takes(p, kind))
        for processor in route:
            processor(event)

    # The interpreter's `JourneySink`: its three calls become events of the stream.

    def call_started(self, record: CallRecord) -> None:
        self.emit(RecordOpened(record))

    def journey_event(self, event: JourneyEvent) -> None:
        self.emit(JourneyStepped(event))

    def call_finished(self, record: CallRecord) -> None:
        self.emit(RecordClosed(record))


def _takes(processor: Processor, kind: type) -> bool:
    events: tuple[type, ...] | None = getattr(processor, "EVENTS", None)
    return events is None or issubclass(kind, events)


__all__ = [
    "AgentBridged",
    "CallAnswered",
    "CallEvent",
    "CallEvents",
    "CallFinished",
    "CallQueued",
    "JourneyStepped",
    "Processor",
    "QueueLeft",
    "RecordClosed",
    "RecordOpened",
]
