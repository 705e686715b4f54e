"""LiveState: what is happening now, kept in memory by the engine, read by the dashboard and /metrics.

The engine calls it as things happen (a call starts, moves through the flow, joins a queue, is answered,
ends; an agent changes state; a flow loads or fails). It is a plain object for the event-loop thread:
no I/O, no locks, times passed in. Listeners registered with `on_change` are called synchronously
with a `LiveChange` after each update; the SSE hub debounces them into pushes.

It satisfies `LiveView`, `AcdView` and `FlowView`, so a small engine can pass it for all three.

In a node of several workers (`ivr serve --workers`), worker 0's live state also mirrors the calls the
other workers hold (`calls_elsewhere`, fed by `ivr.web.node`): its snapshot, queues and agents' calls are
the node's, while `calls_started_total` and `own_calls_json` stay this process's own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from ivr.web.sources import (
    AgentPresence,
    AgentView,
    CurrentCall,
    FlowStatus,
    LiveCall,
    LiveSnapshot,
    QueueView,
)

log = structlog.get_logger(__name__)

RECENT_CALLS = 12
"""How many calls in progress a snapshot lists (newest first)."""


class ChangeKind(enum.Enum):
    CALL = "call"
    AGENT = "agent"
    FLOW = "flow"


@dataclass(slots=True, frozen=True)
class LiveChange:
    kind: ChangeKind
    key: str
    """The call id, agent id or flow id that changed."""


MAX_MIRRORED_CALLS = 100_000
"""Calls mirrored from one other worker at most (a worker's own are bounded by its `max_calls`)."""


@dataclass(slots=True)
class _Call:
    call_id: str
    caller: str
    dialed: str
    started_at: datetime
    dialect: str = ""
    flow_id: str = ""
    node: str = ""
    queue: str = ""
    enqueued_at: datetime | None = None
    priority: int = 0
    context: dict[str, str] = field(default_factory=dict)
    agent_id: str = ""
    answered_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        """Everything about the call, for the worker that mirrors it (`from_json` reads it back)."""
        return {
            "call_id": self.call_id, "caller": self.caller, "dialed": self.dialed,
            "started_at": self.started_at.isoformat(), "dialect": self.dialect, "flow_id": self.flow_id,
            "node": self.node, "queue": self.queue, "priority": self.priority, "context": dict(self.context),
            "enqueued_at": _iso(self.enqueued_at), "agent_id": self.agent_id, "answered_at": _iso(self.answered_at),
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> _Call:
        """A call another worker reported (`to_json`); raises ValueError/TypeError/KeyError if malformed."""
        context = raw.get("context") or {}
        if not isinstance(context, Mapping):
            raise TypeError("context must be an object")
        return cls(
            str(raw["call_id"]), str(raw["caller"]), str(raw["dialed"]), datetime.fromisoformat(str(raw["started_at"])),
            dialect=str(raw.get("dialect", "")), flow_id=str(raw.get("flow_id", "")), node=str(raw.get("node", "")),
            queue=str(raw.get("queue", "")), enqueued_at=_time(raw.get("enqueued_at")),
            priority=int(str(raw.get("priority", 0))), context={str(k): str(v) for k, v in context.items()},
            agent_id=str(raw.get("agent_id", "")), answered_at=_time(raw.get("answered_at")),
        )  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: object) -> datetime | None:
    return None if value is None or value == "" else datetime.fromisoformat(str(value))


@dataclass(slots=True)
class _Agent:
    agent_id: str
    state: AgentPresence
    since: datetime
    name: str = ""
    queues: tuple[str, ...] = ()
    region: str = ""
    call_id: str | None = None
    pause_reason: str | None = None
    today: Mapping[str, object] = field(default_factory=dict)


Listener = Callable[[LiveChange], None]


class LiveState:
    """Calls in the IVR and in queues, agents by state, flow load status — now."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._agents: dict[str, _Agent] = {}
        self._flows: dict[str, FlowStatus] = {}
        self._known_queues: set[str] = set()
        self._listeners: list[Listener] = []
        self._started_total = 0
        self._elsewhere: dict[str, dict[str, _Call]] = {}
        """Calls held by the node's other workers, by worker (worker 0 of a node only)."""

    # --- updates from the engine ----------------------------------------------------------------

    def call_started(
        self, call_id: str, caller: str, dialed: str, at: datetime, *, dialect: str = "", flow_id: str = ""
    ) -> None:
        self._calls[call_id] = _Call(call_id, caller, dialed, at, dialect=dialect, flow_id=flow_id)
        self._started_total += 1
        self._changed(ChangeKind.CALL, call_id)

    def call_progressed(self, call_id: str, *, node: str | None = None, dialect: str | None = None) -> None:
        """The call entered `node` (or its dialect became known)."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if node is not None:
            call.node = node
        if dialect is not None:
            call.dialect = dialect
        self._changed(ChangeKind.CALL, call_id)

    def call_enqueued(
        self,
        call_id: str,
        queue: str,
        at: datetime,
        *,
        context: Mapping[str, str] | None = None,
        priority: int = 0,
    ) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        call.queue, call.enqueued_at, call.priority = queue, at, priority
        call.agent_id, call.answered_at = "", None
        call.context = dict(context or {})
        self._known_queues.add(queue)
        self._changed(ChangeKind.CALL, call_id)

    def call_answered(self, call_id: str, agent_id: str, at: datetime) -> None:
        """An agent took the call from its queue."""
        call = self._calls.get(call_id)
        if call is None:
            return
        call.agent_id, call.answered_at = agent_id, at
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.call_id = call_id
        self._changed(ChangeKind.CALL, call_id)

    def call_ended(self, call_id: str) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        agent = self._agents.get(call.agent_id)
        if agent is not None and agent.call_id == call_id:
            agent.call_id = None
        self._changed(ChangeKind.CALL, call_id)

    def agent_changed(
        self,
        agent_id: str,
        state: AgentPresence,
        at: datetime,
        *,
        name: str | None = None,
        queues: Iterable[str] | None = None,
        region: str | None = None,
        pause_reason: str | None = None,
        today: Mapping[str, object] | None = None,
    ) -> None:
        """`pause_reason`: why an agent on break is (None: not on break); `today`: their figures today."""
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = _Agent(agent_id, state, at)
        elif agent.state is not state:
            agent.state, agent.since = state, at
        if name is not None:
            agent.name = name
        if queues is not None:
            agent.queues = tuple(queues)
            self._known_queues.update(agent.queues)
        if region is not None:
            agent.region = region
        agent.pause_reason = pause_reason if state is AgentPresence.ON_BREAK else None
        if today is not None:
            agent.today = dict(today)
        if state in (AgentPresence.AVAILABLE, AgentPresence.LOGGED_OUT, AgentPresence.ON_BREAK):
            agent.call_id = None
        self._changed(ChangeKind.AGENT, agent_id)

    def agent_removed(self, agent_id: str) -> None:
        if self._agents.pop(agent_id, None) is not None:
            self._changed(ChangeKind.AGENT, agent_id)

    def flow_status(self, status: FlowStatus) -> None:
        """A flow (re)loaded or failed to; a failed reload keeps the version in service."""
        previous = self._flows.get(status.flow_id)
        if previous is not None and not status.version:
            status = replace(status, version=previous.version, path=status.path or previous.path)
        self._flows[status.flow_id] = status
        self._changed(ChangeKind.FLOW, status.flow_id)

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(change)` after every update; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _changed(self, kind: ChangeKind, key: str) -> None:
        change = LiveChange(kind, key)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a dashboard listener's bug must never reach the call that reported
                log.exception("live_listener_failed", listener=repr(listener))

    # --- reads ----------------------------------------------------------------------------------

    @property
    def calls_started_total(self) -> int:
        """Calls seen since start (monotonic): `rate()` of it is the calls-per-second figure."""
        return self._started_total

    def own_calls_json(self) -> list[dict[str, object]]:
        """This process's calls in progress, in full (what another worker mirrors with `calls_elsewhere`)."""
        return [call.to_json() for call in self._calls.values()]

    def holder(self, call_id: str) -> str | None:
        """Who holds the call: "" this process, a worker's name, or None (not in progress anywhere known)."""
        if call_id in self._calls:
            return ""
        return next((worker for worker, calls in self._elsewhere.items() if call_id in calls), None)

    def calls_elsewhere(self, worker: str, calls: Iterable[Mapping[str, object]]) -> None:
        """Replace what `worker` (another worker of this node) holds with `calls` (its `own_calls_json`);
        an empty list when it is gone. A malformed entry is dropped and logged, never raised."""
        mirrored: dict[str, _Call] = {}
        for raw in calls:
            if len(mirrored) >= MAX_MIRRORED_CALLS:
                log.warning("live_mirror_full", worker=worker, limit=MAX_MIRRORED_CALLS)
                break
            try:
                call = _Call.from_json(raw)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("live_mirror_bad_call", worker=worker, error=str(exc))
                continue
            mirrored[call.call_id] = call
            if call.queue:
                self._known_queues.add(call.queue)
        if mirrored:
            self._elsewhere[worker] = mirrored
        elif self._elsewhere.pop(worker, None) is None:
            return
        self._changed(ChangeKind.CALL, "*")

    def _all_calls(self) -> list[_Call]:
        return [*self._calls.values(), *(c for calls in self._elsewhere.values() for c in calls.values())]

    def _call(self, call_id: str) -> _Call | None:
        found = self._calls.get(call_id)
        if found is None:
            found = next((calls[call_id] for calls in self._elsewhere.values() if call_id in calls), None)
        return found

    def _call_of_agent(self, agent: _Agent) -> _Call | None:
        if agent.call_id is not None and (call := self._call(agent.call_id)) is not None:
            return call
        if agent.state is not AgentPresence.IN_CALL:
            return None
        # Answered on another worker: that worker's mirror names the agent.
        return next((c for calls in self._elsewhere.values() for c in calls.values()
                     if c.agent_id == agent.agent_id), None)  # fmt: skip

    def snapshot(self, at: datetime) -> LiveSnapshot:
        calls = self._all_calls()
        in_queue = sum(1 for c in calls if c.queue and not c.agent_id)
        with_agent = sum(1 for c in calls if c.agent_id)
        by_state = dict.fromkeys(AgentPresence, 0)
        for agent in self._agents.values():
            by_state[agent.state] += 1
        recent = sorted(calls, key=lambda c: c.started_at, reverse=True)[:RECENT_CALLS]
        return LiveSnapshot(
            at=at,
            in_ivr=len(calls) - in_queue - with_agent,
            in_queue=in_queue,
            with_agent=with_agent,
            queues=tuple(self.queues(at)),
            agents_by_state=by_state,
            flows=tuple(self.flows()),
            recent=tuple(
                LiveCall(c.call_id, c.caller, c.started_at, c.node, c.dialect, c.queue, c.agent_id)
                for c in recent
            ),
        )

    def queues(self, at: datetime) -> list[QueueView]:
        waiting: dict[str, list[_Call]] = {q: [] for q in self._known_queues}
        for call in self._all_calls():
            if call.queue and not call.agent_id:
                waiting.setdefault(call.queue, []).append(call)
        views = []
        for name in sorted(waiting):
            calls = waiting[name]
            oldest = min((c.enqueued_at for c in calls if c.enqueued_at is not None), default=None)
            serving = [a for a in self._agents.values() if name in a.queues]
            views.append(
                QueueView(
                    queue=name,
                    waiting=len(calls),
                    longest_wait_s=0.0 if oldest is None else max(0.0, (at - oldest).total_seconds()),
                    agents_available=sum(1 for a in serving if a.state is AgentPresence.AVAILABLE),
                    agents_in_call=sum(1 for a in serving if a.state is AgentPresence.IN_CALL),
                )
            )
        return views

    def agents(self) -> list[AgentView]:
        return [self._agent_view(a) for a in sorted(self._agents.values(), key=lambda a: a.agent_id)]

    def agent(self, agent_id: str) -> AgentView | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else self._agent_view(agent)

    def current_call(self, agent_id: str, at: datetime) -> CurrentCall | None:
        agent = self._agents.get(agent_id)
        call = None if agent is None else self._call_of_agent(agent)
        if call is None:
            return None
        waited_until = call.answered_at or at
        wait_s = 0.0 if call.enqueued_at is None else (waited_until - call.enqueued_at).total_seconds()
        return CurrentCall(
            call_id=call.call_id,
            caller=call.caller,
            queue=call.queue,
            dialect=call.dialect,
            wait_s=max(0.0, wait_s),
            answered_at=call.answered_at,
            context=dict(call.context),
        )

    def flows(self) -> list[FlowStatus]:
        return [self._flows[k] for k in sorted(self._flows)]

    def _agent_view(self, agent: _Agent) -> AgentView:
        call = self._call_of_agent(agent) if self._elsewhere else None
        return AgentView(
            agent_id=agent.agent_id,
            state=agent.state,
            name=agent.name,
            since=agent.since,
            queues=agent.queues,
            region=agent.region,
            call_id=call.call_id if call is not None else agent.call_id,
            pause_reason=agent.pause_reason,
            today=agent.today,
        )
