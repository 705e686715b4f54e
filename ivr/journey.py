"""A call's journey: the step events a flow emits and the record a call ends with.

The flow interpreter (and the ACD) produce these; `ivr.store` persists them. Neither side knows the
other: they meet at `JourneySink`. Sinks are synchronous and must not block: a store queues the
write and commits it off the event loop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Direction(enum.Enum):
    """Who placed the call: a caller dialled in, or the engine called out (a campaign or an API call)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(enum.Enum):
    SELF_SERVED = "self-served"
    TO_AGENT = "to-agent"
    ABANDONED = "abandoned"
    CALLBACK = "callback"
    TRANSFERRED = "transferred"
    UNSERVED = "unserved"
    """The caller was sent to a queue that could not take them (full, nobody able to serve) and the
    flow ended without a human: not self-service, or containment would count them as contained."""
    ERROR = "error"
    INTERRUPTED = "interrupted"
    """The engine stopped (crash, kill) while the call was in progress; set on restart."""


@dataclass(slots=True, frozen=True)
class JourneyEvent:
    """One step of a call: a node entered, an input taken, an intent decided, a queue joined."""

    call_id: str
    seq: int
    """Position in the call's journey, from 0."""
    at: datetime
    node: str
    """The flow node this step belongs to ("" for call-level steps such as `answered`)."""
    kind: str
    """What happened: `node_entered`, `prompt_played`, `input`, `intent`, `enqueued`, `error`..."""
    data: Mapping[str, Any] = field(default_factory=dict)
    breakpoint: bool = False
    """Self-service failed at this step (no-match limit, data dip failure, exception)."""


@dataclass(slots=True)
class CallRecord:
    """Everything we know of one call; committed when the call ends."""

    call_id: str
    caller: str
    dialed: str
    started_at: datetime
    flow_id: str = ""
    flow_version: str = ""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    dialect: str = ""
    transcript: str = ""
    intent: str = ""
    confidence: float | None = None
    path: list[str] = field(default_factory=list)
    queue: str = ""
    wait_s: float | None = None
    agent_id: str = ""
    outcome: Outcome | None = None
    survey_score: int | None = None
    breakpoint_node: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    direction: Direction = Direction.INBOUND


class JourneySink(Protocol):
    """Where calls report their journey; implemented by the store (and by test collectors)."""

    def call_started(self, record: CallRecord) -> None: ...

    def journey_event(self, event: JourneyEvent) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...


class MemoryJourneySink:
    """Keeps everything in lists: for the simulator and tests."""

    def __init__(self) -> None:
        self.started: list[CallRecord] = []
        self.events: list[JourneyEvent] = []
        self.finished: list[CallRecord] = []

    def call_started(self, record: CallRecord) -> None:
        self.started.append(record)

    def journey_event(self, event: JourneyEvent) -> None:
        self.events.append(event)

    def call_finished(self, record: CallRecord) -> None:
        self.finished.append(record)
