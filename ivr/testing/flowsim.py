"""Run a flow against a scripted caller (`ivr simulate`, flow tests, e2e tests, the benchmark).

The demo back end runs in-process on a loopback port unless a URL is given; time is a `FakeClock`
set to the requested instant, so schedule nodes are reproducible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.clock import FakeClock
from ivr.flow.events import StepKind
from ivr.flow.expr import Value
from ivr.flow.interpreter import Interpreter
from ivr.flow.messages import MemoryMessageBox, MessageBox
from ivr.flow.model import Flow, ScheduleNode
from ivr.flow.runtime import HttpClient
from ivr.journey import CallRecord, JourneyEvent, MemoryJourneySink, Outcome
from ivr.testing.simcall import Action, ActionKind, SimCall, Turn

DEFAULT_TIME = "2026-03-02T10:00:00"
"""A Monday morning: simulations are reproducible unless `--time` says otherwise."""
UNREACHABLE_BACKEND = "http://127.0.0.1:9"


def parse_time(text: str, flow: Flow) -> dt.datetime:
    """ISO time; without an offset it is read in the zone of the flow's first schedule node (else UTC)."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        zone = next((n.timezone for n in flow.spec.nodes.values() if isinstance(n, ScheduleNode)), "UTC")
        when = when.replace(tzinfo=ZoneInfo(zone))
    return when


class _TraceSink(MemoryJourneySink):
    def __init__(self, timeline: list[JourneyEvent | Action]) -> None:
        super().__init__()
        self._timeline = timeline

    def journey_event(self, event: JourneyEvent) -> None:
        super().journey_event(event)
        self._timeline.append(event)


@dataclass(slots=True)
class Simulation:
    record: CallRecord
    call: SimCall
    events: list[JourneyEvent]
    timeline: list[JourneyEvent | Action] = field(default_factory=list)
    when: dt.datetime | None = None

    @property
    def requests(self) -> list[QueueRequest]:
        return self.call.requests

    @property
    def breakpoints(self) -> list[JourneyEvent]:
        return [e for e in self.events if e.breakpoint]


@contextlib.asynccontextmanager
async def backend_url(url: str | None) -> AsyncIterator[str]:
    """The given URL, or the demo back end started in-process for the duration."""
    if url is not None:
        yield url
        return
    from ivr.demo_backend import DemoBackend

    async with DemoBackend() as backend:
        yield backend.url


async def simulate(
    flow: Flow,
    script: Sequence[Turn],
    *,
    caller: str = "13800138000",
    when: dt.datetime | None = None,
    backend: str | None = None,
    queue_results: Mapping[str, QueueOutcomeKind] | None = None,
    variables: Mapping[str, Value] | None = None,
    http: HttpClient | None = None,
    messages: MessageBox | None = None,
) -> Simulation:
    """One simulated call from start to end. `backend` is the data-dip base URL (`backend_url`);
    voice messages go to `messages` (a fresh `MemoryMessageBox` when None)."""
    timeline: list[JourneyEvent | Action] = []
    sink = _TraceSink(timeline)
    clock = FakeClock(wall_start=when or parse_time(DEFAULT_TIME, flow))
    dialed = flow.spec.numbers[0] if flow.spec.numbers else "0"
    call = SimCall(
        script=script,
        caller=caller,
        dialed=dialed,
        queue_results=dict(queue_results or {}),
        observer=timeline.append,
    )
    interpreter = Interpreter(sink=sink, clock=clock, http=http, messages=messages or MemoryMessageBox())
    overrides: dict[str, Value] = dict(variables or {})
    try:
        async with backend_url(backend) as url:
            overrides.setdefault("backend_url", url)
            record = await interpreter.run(flow, call, variables=overrides)
    finally:
        await interpreter.aclose()
    return Simulation(record, call, sink.events, timeline, clock.wall())


# --- presentation ---------------------------------------------------------------------------------


def outcome_line(record: CallRecord) -> str:
    outcome = record.outcome
    if outcome is Outcome.TO_AGENT or (record.queue and outcome in (Outcome.CALLBACK, Outcome.ERROR)):
        extra = "" if outcome is Outcome.TO_AGENT else f" ({outcome.value})"
        return f"outcome: queued {record.queue}{extra}"
    if outcome is Outcome.ABANDONED:
        where = record.path[-1] if record.path else "start"
        queue = f" in queue {record.queue}" if record.queue and where.startswith("queue") else ""
        return f"outcome: abandoned at {where}{queue}"
    return f"outcome: {outcome.value if outcome else 'none'}"


def _event_line(e: JourneyEvent) -> str | None:
    d: Mapping[str, Any] = e.data
    kind = e.kind
    mark = "  ⚑ breakpoint" if e.breakpoint else ""
    if kind == StepKind.NODE_ENTERED.value:
        return f"[{e.node}] {d.get('type', '')}"
    if kind == StepKind.INTENT.value:
        if d.get("intent") == "human_key":
            return f"  intent: human (key {d.get('key')})"
        return (
            f"  intent: {d.get('intent') or '(none)'} {float(d.get('confidence', 0)):.2f} ({d.get('source')})"
        )
    if kind == StepKind.VARIABLE_SET.value:
        return f"  set {d.get('name')} = {d.get('value')}"
    if kind == StepKind.DATA_DIP.value:
        return f"  data dip {d.get('url')} → {d.get('status')}"
    if kind == StepKind.DATA_DIP_FAILED.value:
        return f"  data dip failed: {d.get('error')}{mark}"
    if kind == StepKind.SCHEDULE.value:
        return f"  schedule: {d.get('state')} ({d.get('local_time')})"
    if kind == StepKind.ENQUEUED.value:
        return f"  enqueued {d.get('queue')} (priority {d.get('priority')})"
    if kind == StepKind.QUEUE_RESULT.value:
        return f"  queue {d.get('queue')}: {d.get('result')}"
    if kind in (StepKind.NO_MATCH.value, StepKind.RETRIES_EXHAUSTED.value, StepKind.ERROR.value):
        detail = d.get("error") or d.get("reason") or d.get("invalid") or f"#{d.get('count', '')}"
        return f"  {kind.replace('_', ' ')}: {detail}{mark}"
    if kind == StepKind.SURVEY.value:
        return f"  survey score: {d.get('score')}"
    return None


def _action_line(a: Action) -> str | None:
    if a.kind is ActionKind.SPOKE:
        return f"  ivr ({a.dialect}): {a.text}"
    if a.kind is ActionKind.HEARD:
        return f"  caller: {a.text}"
    if a.kind is ActionKind.HUNG_UP:
        return f"  hangup: {a.text}"
    if a.kind is ActionKind.TRANSFERRED:
        return f"  transfer to {a.text}"
    return None


def format_steps(sim: Simulation) -> list[str]:
    lines: list[str] = []
    for item in sim.timeline:
        line = _action_line(item) if isinstance(item, Action) else _event_line(item)
        if line is not None:
            lines.append(line)
    lines.append(outcome_line(sim.record))
    return lines


def to_json(sim: Simulation) -> dict[str, Any]:
    r = sim.record
    return {
        "call_id": r.call_id,
        "flow": r.flow_id,
        "flow_version": r.flow_version,
        "time": sim.when.isoformat() if sim.when else None,
        "outcome": r.outcome.value if r.outcome else None,
        "queue": r.queue,
        "intent": r.intent,
        "confidence": r.confidence,
        "dialect": r.dialect,
        "transcript": r.transcript,
        "path": r.path,
        "breakpoint": r.breakpoint_node,
        "survey_score": r.survey_score,
        "spoken": [
            {"prompt": a.prompt_id, "dialect": a.dialect, "text": a.text}
            for a in sim.call.actions
            if a.kind is ActionKind.SPOKE
        ],
        "queue_requests": [
            {"queue": q.queue, "priority": q.priority, "dialect": q.dialect, "context": dict(q.context)}
            for q in sim.requests
        ],
        "events": [
            {"seq": e.seq, "node": e.node, "kind": e.kind, "data": dict(e.data), "breakpoint": e.breakpoint}
            for e in sim.events
        ],
        "variables": r.variables,
    }
