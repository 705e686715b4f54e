"""What the web app reads and asks: small Protocols the engine wires to the real objects, tests to fakes.

Views (`AcdView`, `FlowView`, `LiveView`) are cheap, in-memory and synchronous: called on the loop.
`CallStoreView` reads block (a database): the app runs them with `asyncio.to_thread`.
Actions (`Dispatcher`, `DialectSetter`) are async: the engine decides where the work runs
(a dispatcher's `active`/`changes` reads are cheap views, called on the loop).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ivr.dispatching import Dispatch, DispatchChange, DispatchChanged
from ivr.dispatching import DispatchRequest as DispatchRequest  # re-exported: the API takes these
from ivr.store import CallDetail, CallPage, CallQuery, Committed, DispatchEntry, Summary


class AgentPresence(enum.Enum):
    """An agent's state as ops see it (the ACD maps its own status/state onto these)."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"
    ON_BREAK = "on_break"


class FlowLoadStatus(enum.Enum):
    LOADED = "loaded"
    """The current file is in service."""
    FAILED = "failed"
    """The file was refused and no version of it is in service."""
    REFUSED = "refused"
    """The latest edit was refused (see `errors`); `version`, loaded earlier, keeps serving calls."""


@dataclass(slots=True, frozen=True)
class FlowStatus:
    flow_id: str
    version: str
    status: FlowLoadStatus
    loaded_at: datetime | None = None
    errors: tuple[str, ...] = ()
    """Load errors, each `file:line:col: message`."""
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "version": self.version,
            "status": self.status.value,
            "loaded_at": _iso(self.loaded_at),
            "errors": list(self.errors),
            "path": self.path,
        }


@dataclass(slots=True, frozen=True)
class QueueView:
    queue: str
    waiting: int
    longest_wait_s: float
    agents_available: int = 0
    agents_in_call: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "waiting": self.waiting,
            "longest_wait_s": round(self.longest_wait_s, 1),
            "agents_available": self.agents_available,
            "agents_in_call": self.agents_in_call,
        }


@dataclass(slots=True, frozen=True)
class AgentView:
    agent_id: str
    state: AgentPresence
    name: str = ""
    since: datetime | None = None
    queues: tuple[str, ...] = ()
    region: str = ""
    call_id: str | None = None
    pause_reason: str | None = None
    """Why the agent is on break (`break`, `lunch`, `missed-offers`...); None when not on break."""
    today: Mapping[str, object] = field(default_factory=dict)
    """Today's figures: calls, talk_s, pauses, paused_s (`ivr.acd.figures`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "state": self.state.value,
            "since": _iso(self.since),
            "queues": list(self.queues),
            "region": self.region,
            "call_id": self.call_id,
            "pause_reason": self.pause_reason,
            "today": dict(self.today),
        }


@dataclass(slots=True, frozen=True)
class CurrentCall:
    """The agent's screen-pop: the call and everything the IVR learned before handing it over."""

    call_id: str
    caller: str
    queue: str
    dialect: str = ""
    wait_s: float = 0.0
    answered_at: datetime | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    """Intent, confidence, transcript, breakpoint node, caller data... as given to the queue."""

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "queue": self.queue,
            "dialect": self.dialect,
            "wait_s": round(self.wait_s, 1),
            "answered_at": _iso(self.answered_at),
            "context": dict(self.context),
        }


@dataclass(slots=True, frozen=True)
class LiveCall:
    call_id: str
    caller: str
    started_at: datetime
    node: str = ""
    dialect: str = ""
    queue: str = ""
    agent_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "started_at": _iso(self.started_at),
            "node": self.node,
            "dialect": self.dialect,
            "queue": self.queue,
            "agent_id": self.agent_id,
        }


@dataclass(slots=True, frozen=True)
class LiveSnapshot:
    """What is happening now, for the dashboard's live numbers."""

    at: datetime
    in_ivr: int
    in_queue: int
    with_agent: int
    queues: tuple[QueueView, ...]
    agents_by_state: Mapping[AgentPresence, int]
    flows: tuple[FlowStatus, ...]
    recent: tuple[LiveCall, ...] = ()
    """The newest calls in progress (a bounded list), for the live table."""

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "in_ivr": self.in_ivr,
            "in_queue": self.in_queue,
            "with_agent": self.with_agent,
            "queues": [q.to_json() for q in self.queues],
            "agents_by_state": {s.value: self.agents_by_state.get(s, 0) for s in AgentPresence},
            "flows": [f.to_json() for f in self.flows],
            "recent": [c.to_json() for c in self.recent],
        }


# Emergency dispatch is one contract shared with the ACD and the store (ivr.dispatching); the web
# names below are the same types.
DispatchView = Dispatch
DispatchChangeKind = DispatchChange
DispatchChangeView = DispatchChanged


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class CallStoreView(Protocol):
    """The call-record store as the web app uses it (`ivr.store.SqlStore` satisfies it)."""

    def list_calls(self, query: CallQuery) -> CallPage: ...

    def get_call(self, call_id: str) -> CallDetail | None: ...

    def summary(self, since: datetime, until: datetime) -> Summary: ...

    def log_dispatch(self, entry: DispatchEntry) -> None: ...

    def dispatches(self, limit: int = 50) -> list[DispatchEntry]: ...

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until every write queued so far is committed (False: `timeout_s` passed first)."""
        ...

    def on_commit(self, listener: Callable[[Committed], None]) -> Callable[[], None]: ...


class LiveView(Protocol):
    """What is happening now (`ivr.web.LiveState` satisfies it)."""

    def snapshot(self, at: datetime) -> LiveSnapshot: ...

    def on_change(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    @property
    def calls_started_total(self) -> int: ...


class AcdView(Protocol):
    """Queues and agents (`ivr.web.LiveState` satisfies it; the ACD may provide a richer one)."""

    def queues(self, at: datetime) -> Sequence[QueueView]: ...

    def agents(self) -> Sequence[AgentView]: ...

    def agent(self, agent_id: str) -> AgentView | None: ...

    def current_call(self, agent_id: str, at: datetime) -> CurrentCall | None: ...


class FlowView(Protocol):
    """The flows in service and their load status."""

    def flows(self) -> Sequence[FlowStatus]: ...


class Dispatcher(Protocol):
    """Cross-region dispatch over the ACD. Actions raise an `IvrError` naming what is wrong (the API
    answers 409 with its message), or `ivr.web.errors.UnknownDispatch` for an id never issued (404)."""

    async def dispatch(self, request: DispatchRequest) -> DispatchView:
        """Start lending; refused for an unknown region, queue or site, or no helper site."""
        ...

    async def end_dispatch(self, dispatch_id: str) -> DispatchView:
        """End an active dispatch now; returns it. Refused if it already ended or expired."""
        ...

    def active(self) -> Sequence[DispatchView]:
        """Dispatches in force now (not the night rule), oldest first."""
        ...

    def changes(self) -> Sequence[DispatchChangeView]:
        """Every change since the engine started (starts, ends, expiries, night hours), oldest first."""
        ...


class DialectSetter(Protocol):
    async def set_dialect(self, caller: str, dialect: str) -> None:
        """Remember `caller`'s dialect; raise an `IvrError` for an unknown dialect."""
        ...
