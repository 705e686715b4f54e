"""The call event stream's processors: each consumer of call facts sees the events it needs, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from ivr.call import QueueOutcomeKind
from ivr.engine.events import (
    AgentBridged,
    CallAnswered,
    CallEvent,
    CallEvents,
    CallFinished,
    CallQueued,
    JourneyStepped,
    QueueLeft,
    RecordClosed,
    RecordOpened,
)
from ivr.engine.processors import DialectMemoryProcessor, LiveViewProcessor, MetricsProcessor, StoreProcessor
from ivr.journey import CallRecord, JourneyEvent, Outcome
from ivr.web.live import LiveState
from ivr.web.metrics import EngineMetrics

AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


class Memory:
    def __init__(self) -> None:
        self.dialects: dict[str, str] = {}

    def get(self, caller: str) -> str | None:
        return self.dialects.get(caller)

    def set(self, caller: str, dialect: str) -> None:
        self.dialects[caller] = dialect


class Store:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def call_started(self, record: CallRecord) -> None:
        self.seen.append(f"started {record.call_id}")

    def journey_event(self, event: JourneyEvent) -> None:
        self.seen.append(f"{event.kind} {event.node}")

    def call_finished(self, record: CallRecord) -> None:
        self.seen.append(f"finished {record.call_id}")


def step(kind: str, seq: int, node: str = "", **data: object) -> JourneyStepped:
    return JourneyStepped(JourneyEvent("c1", seq, AT, node, kind, data))


def a_call(dialect_chosen: bool) -> list[CallEvent]:
    record = CallRecord("c1", "13800000000", "95519", AT, dialect="yue", outcome=Outcome.TO_AGENT)
    events: list[CallEvent] = [
        CallAnswered("c1", "13800000000", "95519", "hotline", "cmn", AT),
        RecordOpened(record),
        step("node_entered", 0, "menu"),
    ]
    if dialect_chosen:
        events.append(step("variable_set", 1, "menu", name="dialect", value="yue"))
    events += [
        CallQueued("c1", "general", AT, 5, {"intent": "claim"}),
        AgentBridged("c1", "a1", "general", AT),
        QueueLeft("c1", "general", QueueOutcomeKind.ANSWERED, 12.5),
        RecordClosed(record),
        CallFinished("c1"),
    ]
    return events


def test_the_interpreter_journey_sink_calls_become_events_of_the_stream() -> None:
    seen: list[CallEvent] = []
    stream = CallEvents([seen.append])
    record = CallRecord("c1", "1", "2", AT)
    stream.call_started(record)
    stream.journey_event(JourneyEvent("c1", 0, AT, "menu", "node_entered"))
    stream.call_finished(record)
    assert [type(e) for e in seen] == [RecordOpened, JourneyStepped, RecordClosed]
    assert {e.call_id for e in seen} == {"c1"}


def test_each_processor_sees_every_event_in_order() -> None:
    store, live, metrics, memory = Store(), LiveState(), EngineMetrics(), Memory()
    views: list[tuple[str, str, str, str]] = []

    def watch(event: CallEvent) -> None:
        calls = live.snapshot(AT).recent
        seen = (calls[0].node, calls[0].queue, calls[0].agent_id) if calls else ("-", "-", "-")
        views.append((type(event).__name__, *seen))

    stream = CallEvents([StoreProcessor(store), LiveViewProcessor(live), MetricsProcessor(metrics),
                         DialectMemoryProcessor(memory), watch])
    for event in a_call(dialect_chosen=True):
        stream.emit(event)
    assert store.seen == ["started c1", "node_entered menu", "variable_set menu", "finished c1"]
    assert views[0] == ("CallAnswered", "", "", "")
    assert ("CallQueued", "menu", "general", "") in views and ("AgentBridged", "menu", "general", "a1") in views
    assert views[-1] == ("CallFinished", "-", "-", "-")
    rendered = metrics.render()
    assert "ivr_calls_total 1" in rendered
    assert 'ivr_calls_ended_total{outcome="to-agent"} 1' in rendered
    assert 'ivr_queue_wait_seconds_count{queue="general"} 1' in rendered
    assert memory.dialects == {"13800000000": "yue"}


def test_a_dialect_only_defaulted_is_not_remembered() -> None:
    memory = Memory()
    stream = CallEvents([DialectMemoryProcessor(memory)])
    for event in a_call(dialect_chosen=False):
        stream.emit(event)
    assert memory.dialects == {}


class Picky:
    """A processor that names the events it takes."""

    EVENTS = (RecordOpened, RecordClosed)

    def __init__(self) -> None:
        self.seen: list[CallEvent] = []

    def __call__(self, event: CallEvent) -> None:
        self.seen.append(event)


def test_a_processor_naming_its_events_is_handed_only_those_and_the_others_every_event() -> None:
    picky, everything = Picky(), list[CallEvent]()
    stream = CallEvents([picky, everything.append])
    events = a_call(dialect_chosen=True)
    for event in events:
        stream.emit(event)
    assert everything == events
    assert picky.seen == [e for e in events if isinstance(e, RecordOpened | RecordClosed)]
    assert picky.seen
