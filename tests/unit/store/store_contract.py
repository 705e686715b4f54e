"""The store contract: every backend passes the same tests.

Subclassed by `test_store_sqlite.py` (SQLite, here) and `tests/integration/store/test_store_postgres.py`
(a real PostgreSQL). A subclass provides the `open_store` fixture: a factory `(node_id) -> SqlStore`
that opens the *same* database each time it is called, so a test can close and reopen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from ivr.journey import CallRecord, Direction, JourneyEvent, Outcome
from ivr.store import (
    BadQuery,
    BadSurveyScore,
    CallQuery,
    Committed,
    DispatchAction,
    DispatchEntry,
    SqlStore,
    StoreClosed,
    record_to_json,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OpenStore = Callable[..., SqlStore]


@dataclass
class SampleCall:
    record: CallRecord
    events: list[JourneyEvent] = field(default_factory=list)
    finished: bool = True


def _events(
    call_id: str, start: datetime, steps: list[tuple[str, str, dict[str, str], bool]]
) -> list[JourneyEvent]:
    return [
        JourneyEvent(call_id, seq, start + timedelta(seconds=2 * seq + 1), node, kind, data, breakpoint=bp)
        for seq, (node, kind, data, bp) in enumerate(steps)
    ]


def sample_calls(base: datetime = T0, step: timedelta = timedelta(minutes=7)) -> list[SampleCall]:
    """A varied, deterministic day: self-served, answered fast and slow, abandoned in queue and IVR,
    callbacks, breakpoints at two nodes, surveys, four dialects, two calls still in progress."""
    intents = ["claim_status", "policy_renewal", "", "payment", "claim_status", "report_accident"]
    dialects = ["cmn", "yue", "hak", "nan", "cmn", "cmn", "yue"]
    calls: list[SampleCall] = []
    for i in range(30):
        call_id = f"call-{i:03d}"
        start = base + step * i
        kind = i % 6
        rec = CallRecord(
            call_id=call_id,
            caller=f"1380000{i:04d}",
            dialed="95500",
            started_at=start,
            flow_id="hotline",
            flow_version="v7",
            answered_at=start,
            ended_at=start + timedelta(seconds=90 + i),
            dialect=dialects[i % len(dialects)],
            transcript="我想查理赔进度" if i % 2 == 0 else "renew my policy",
            intent=intents[i % len(intents)],
            confidence=round(0.5 + (i % 5) / 10, 2),
            path=["greeting", "ask_need", "route"],
            variables={"policy": f"P{i:05d}", "区域": "广东"},
        )
        steps: list[tuple[str, str, dict[str, str], bool]] = [
            ("greeting", "node_entered", {}, False),
            ("ask_need", "input", {"text": rec.transcript}, False),
        ]
        if i % 4 == 1:
            steps.append(
                ("ask_need", "no_match_limit", {"heard": rec.transcript, "policy": f"P{i:05d}"}, True)
            )
        if i % 7 == 2:
            steps.append(("verify_policy", "data_dip_failed", {"policy": f"P{i:05d}"}, True))
        if kind == 0:
            rec.outcome = Outcome.SELF_SERVED
        elif kind in (1, 2):
            rec.queue, rec.agent_id = ("claims" if i % 2 else "general"), f"agent-{i % 4}"
            rec.wait_s = 8.0 + i if kind == 1 else 25.0 + i
            rec.outcome = Outcome.TO_AGENT
        elif kind == 3:
            rec.queue, rec.wait_s, rec.outcome = "claims", 40.0 + i, Outcome.ABANDONED
        elif kind == 4:
            rec.outcome = Outcome.ABANDONED
        else:
            rec.queue, rec.wait_s, rec.outcome = "general", 30.0, Outcome.CALLBACK
        if rec.queue:
            steps.append(("route", "enqueued", {"queue": rec.queue}, False))
        if i % 3 == 0:
            rec.survey_score = (i * 7) % 11
        events = _events(call_id, start, steps)
        rec.breakpoint_node = next((e.node for e in events if e.breakpoint), "")
        calls.append(SampleCall(rec, events))
    for j in range(2):
        start = base + step * 30 + timedelta(seconds=j)
        rec = CallRecord(f"live-{j}", f"1390000000{j}", "95500", start, flow_id="hotline", dialect="yue")
        steps = [("greeting", "node_entered", {}, False), ("ask_need", "input", {"text": "保单"}, j == 1)]
        calls.append(SampleCall(rec, _events(rec.call_id, start, steps), finished=False))
    return calls


def write_calls(store: SqlStore, calls: list[SampleCall]) -> None:
    for call in calls:
        started = replace(call.record, outcome=None, ended_at=None, survey_score=None)
        store.call_started(started)
        for event in call.events:
            store.journey_event(event)
        if call.finished:
            store.call_finished(call.record)
    assert store.flush(10)


def expected_summary(calls: list[SampleCall], since: datetime, until: datetime) -> dict[str, object]:
    """The summary figures, computed here from the definitions (not by the code under test)."""
    window = [c for c in calls if since <= c.record.started_at < until]
    finished = [c.record for c in window if c.finished]
    offered = [r for r in finished if r.queue]
    answered = [r for r in offered if r.agent_id]
    scores = [r.survey_score for r in finished if r.survey_score is not None]
    breakpoint_calls = [c for c in window if any(e.breakpoint for e in c.events)]
    by_node: dict[str, list[str]] = {}
    for c in window:
        for e in c.events:
            if e.breakpoint:
                by_node.setdefault(e.node, []).append(c.record.call_id)
    return {
        "calls": len(window),
        "finished": len(finished),
        "in_progress": len(window) - len(finished),
        "containment": sum(r.outcome is Outcome.SELF_SERVED for r in finished) / len(finished),
        "answer_rate": len(answered) / len(offered),
        "abandon_rate": sum(r.outcome is Outcome.ABANDONED for r in offered) / len(offered),
        "asa_s": sum(r.wait_s or 0.0 for r in answered) / len(answered),
        "service_level": sum((r.wait_s or 0.0) <= 20.0 for r in answered) / len(offered),
        "nps": 100.0 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores),
        "surveys": len(scores),
        "intent_mix": dict(Counter(c.record.intent for c in window if c.record.intent)),
        "dialects": dict(Counter(c.record.dialect for c in window)),
        "breakpoints": {node: len(ids) for node, ids in by_node.items()},
        "broken": len(breakpoint_calls),
        "rescued": sum(1 for c in breakpoint_calls if c.record.agent_id),
    }


class StoreContract:
    """The tests every backend passes; a subclass supplies `open_store`."""

    @pytest.fixture
    def store(self, open_store: OpenStore) -> SqlStore:
        return open_store()

    def test_started_call_is_stored_in_progress(self, store: SqlStore) -> None:
        rec = CallRecord("c-1", "13800000000", "95500", T0, flow_id="hotline", dialect="yue")
        store.call_started(rec)
        assert store.flush(5)
        detail = store.get_call("c-1")
        assert detail is not None
        assert detail.in_progress
        assert detail.record.outcome is None
        assert detail.record.dialect == "yue"

    def test_finished_record_round_trips_every_field(self, store: SqlStore) -> None:
        call = sample_calls()[1]
        write_calls(store, [call])
        detail = store.get_call(call.record.call_id)
        assert detail is not None
        assert not detail.in_progress
        assert detail.record == call.record

    def test_record_is_encoded_when_reported_not_when_written(self, store: SqlStore) -> None:
        rec = CallRecord("c-2", "1", "2", T0, intent="claim_status")
        store.call_started(rec)
        rec.intent = "changed-after-report"
        assert store.flush(5)
        detail = store.get_call("c-2")
        assert detail is not None and detail.record.intent == "claim_status"

    def test_journey_kept_in_order_with_what_the_caller_said(self, store: SqlStore) -> None:
        call = sample_calls()[1]
        write_calls(store, [call])
        detail = store.get_call(call.record.call_id)
        assert detail is not None
        assert detail.journey == call.events
        broken = [e for e in detail.journey if e.breakpoint]
        assert broken and broken[0].data["heard"] == call.record.transcript

    def test_breakpoint_node_is_the_first_breakpoint_when_the_record_has_none(self, store: SqlStore) -> None:
        call = sample_calls()[9]  # breakpoints at ask_need (9 % 4 == 1) and verify_policy (9 % 7 == 2)
        assert [e.node for e in call.events if e.breakpoint] == ["ask_need", "verify_policy"]
        call.record.breakpoint_node = ""
        write_calls(store, [call])
        detail = store.get_call(call.record.call_id)
        assert detail is not None and detail.record.breakpoint_node == "ask_need"

    def test_duplicate_journey_event_is_ignored(self, store: SqlStore) -> None:
        call = sample_calls()[0]
        write_calls(store, [call])
        store.journey_event(replace(call.events[0], kind="duplicate"))
        assert store.flush(5)
        detail = store.get_call(call.record.call_id)
        assert detail is not None and [e.kind for e in detail.journey] == [e.kind for e in call.events]

    def test_survey_after_the_call_is_stored_with_it(self, store: SqlStore) -> None:
        call = sample_calls()[1]
        call.record.survey_score = None
        write_calls(store, [call])
        store.record_survey(call.record.call_id, 9)
        assert store.flush(5)
        detail = store.get_call(call.record.call_id)
        assert detail is not None and detail.record.survey_score == 9

    def test_survey_before_the_call_record_is_kept_when_the_call_finishes(self, store: SqlStore) -> None:
        call = sample_calls()[1]
        call.record.survey_score = None
        store.record_survey(call.record.call_id, 3)
        write_calls(store, [call])
        detail = store.get_call(call.record.call_id)
        assert detail is not None and detail.record.survey_score == 3

    @pytest.mark.parametrize("score", [-1, 11, 4.5, True], ids=["negative", "eleven", "float", "bool"])
    def test_bad_survey_score_is_refused_at_the_call(self, store: SqlStore, score: object) -> None:
        with pytest.raises(BadSurveyScore, match="0..10"):
            store.record_survey("c-1", score)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("filters", "keep"),
        [
            ({"intent": "claim_status"}, lambda c: c.record.intent == "claim_status"),
            ({"queue": "claims"}, lambda c: c.record.queue == "claims"),
            ({"outcome": Outcome.ABANDONED}, lambda c: c.finished and c.record.outcome is Outcome.ABANDONED),
            ({"dialect": "hak"}, lambda c: c.record.dialect == "hak"),
            ({"in_progress": True}, lambda c: not c.finished),
            ({"caller": "13800000007"}, lambda c: c.record.caller == "13800000007"),
            (
                {"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=2)},
                lambda c: T0 + timedelta(hours=1) <= c.record.started_at < T0 + timedelta(hours=2),
            ),
        ],
        ids=["intent", "queue", "outcome", "dialect", "in-progress", "caller", "window"],
    )
    def test_filters_select_exactly_the_matching_calls(
        self, store: SqlStore, filters: dict[str, object], keep: Callable[[SampleCall], bool]
    ) -> None:
        calls = sample_calls()
        write_calls(store, calls)
        page = store.list_calls(CallQuery(limit=1000, **filters))  # type: ignore[arg-type]
        expected = sorted((c for c in calls if keep(c)), key=lambda c: c.record.started_at, reverse=True)
        assert expected, "the sample must contain matches for every filter"
        assert [r.call_id for r in page.records] == [c.record.call_id for c in expected]

    def test_cursor_paging_returns_every_call_once_newest_first(self, store: SqlStore) -> None:
        calls = sample_calls()
        write_calls(store, calls)
        seen: list[str] = []
        query = CallQuery(limit=7)
        while True:
            page = store.list_calls(query)
            seen += [r.call_id for r in page.records]
            if page.next_cursor is None:
                break
            query = replace(query, cursor=page.next_cursor)
        newest_first = sorted(calls, key=lambda c: (c.record.started_at, c.record.call_id), reverse=True)
        assert seen == [c.record.call_id for c in newest_first]

    def test_offset_paging(self, store: SqlStore) -> None:
        calls = sample_calls()
        write_calls(store, calls)
        first = store.list_calls(CallQuery(limit=5))
        second = store.list_calls(CallQuery(limit=5, offset=5))
        ids = [r.call_id for r in first.records + second.records]
        newest_first = sorted(calls, key=lambda c: c.record.started_at, reverse=True)
        assert ids == [c.record.call_id for c in newest_first[:10]]

    def test_bad_cursor_is_a_bad_query(self, store: SqlStore) -> None:
        with pytest.raises(BadQuery, match="bad cursor"):
            store.list_calls(CallQuery(cursor="not-a-cursor!"))

    def test_summary_figures_are_exact(self, store: SqlStore) -> None:
        calls = sample_calls()
        write_calls(store, calls)
        since, until = T0 + timedelta(minutes=10), T0 + timedelta(hours=5)
        want = expected_summary(calls, since, until)
        got = store.summary(since, until)
        assert got.calls == want["calls"]
        assert got.finished == want["finished"]
        assert got.in_progress == want["in_progress"]
        assert got.surveys == want["surveys"]
        for name in ("containment", "answer_rate", "abandon_rate", "asa_s", "service_level", "nps"):
            assert getattr(got, name) == pytest.approx(want[name]), name
        assert got.intent_mix == want["intent_mix"]
        assert got.dialects == want["dialects"]
        assert {b.node: b.steps for b in got.breakpoints} == want["breakpoints"]
        assert got.broken == want["broken"]
        assert got.rescued == want["rescued"]
        assert [n for _, n in got.funnel()] == [
            want["calls"],
            sum(want["intent_mix"].values()),
            want["broken"],
            want["rescued"],
        ]

    def test_outbound_calls_are_listed_by_direction_and_kept_out_of_the_hotline_summary(
        self, store: SqlStore
    ) -> None:
        calls = sample_calls()
        outbound = [
            SampleCall(replace(c.record, call_id=f"out-{i}", direction=Direction.OUTBOUND, queue="revisit",
                               agent_id="", outcome=Outcome.SELF_SERVED, variables={"campaign": "revisit"}))
            for i, c in enumerate(calls[3:6])
        ]
        write_calls(store, calls + outbound)
        detail = store.get_call("out-0")
        assert detail is not None and detail.record == outbound[0].record
        out_page = store.list_calls(CallQuery(limit=1000, direction=Direction.OUTBOUND))
        in_page = store.list_calls(CallQuery(limit=1000, direction=Direction.INBOUND))
        assert {r.call_id for r in out_page.records} == {"out-0", "out-1", "out-2"}
        assert {r.call_id for r in in_page.records} == {c.record.call_id for c in calls}
        since, until = T0, T0 + timedelta(days=1)
        hotline, campaigns = store.summary(since, until), store.summary(since, until, direction=Direction.OUTBOUND)
        assert (hotline.calls, hotline.offered) == (expected_summary(calls, since, until)["calls"],
                                                    sum(1 for c in calls if c.finished and c.record.queue))
        assert (campaigns.calls, campaigns.self_served, campaigns.offered) == (3, 3, 3)

    def test_summary_of_an_empty_window_has_no_ratios(self, store: SqlStore) -> None:
        got = store.summary(T0, T0 + timedelta(hours=1))
        assert got.calls == 0
        assert got.containment is None and got.nps is None and got.service_level is None
        assert got.intent_mix == {} and got.breakpoints == []

    def test_reopen_marks_calls_left_in_progress_interrupted_with_their_journey(
        self, open_store: OpenStore
    ) -> None:
        calls = sample_calls()
        store = open_store()
        write_calls(store, calls)
        store.close()
        reopened = open_store()
        live = [c for c in calls if not c.finished]
        assert reopened.recovered == len(live)
        for call in live:
            detail = reopened.get_call(call.record.call_id)
            assert detail is not None
            assert not detail.in_progress
            assert detail.record.outcome is Outcome.INTERRUPTED
            assert detail.journey == call.events
            assert detail.record.ended_at == call.events[-1].at
        assert reopened.get_call(calls[0].record.call_id).record.outcome is Outcome.SELF_SERVED  # type: ignore[union-attr]
        assert open_store().recovered == 0

    def test_an_interrupted_record_keeps_what_its_journey_learned(self, open_store: OpenStore) -> None:
        store = open_store()
        store.call_started(CallRecord("cut-1", "13800138000", "95519", T0))
        steps: list[tuple[str, str, dict[str, object]]] = [
            ("need", "node_entered", {}),
            ("need", "input", {"speech": "I want to file a claim", "confidence": 0.44, "language": "en"}),
            ("need", "variable_set", {"name": "dialect", "value": "en"}),
            ("need", "intent", {"intent": "claim", "confidence": 0.93, "source": "classifier"}),
            ("queue_claims", "node_entered", {}),
            ("queue_claims", "enqueued", {"queue": "claims", "priority": 5}),
        ]
        for seq, (node, kind, data) in enumerate(steps):
            store.journey_event(JourneyEvent("cut-1", seq, T0 + timedelta(seconds=seq), node, kind, data))
        assert store.flush(5)
        store.close()  # as after a kill -9: started, never finished
        detail = open_store().get_call("cut-1")
        assert detail is not None and detail.record.outcome is Outcome.INTERRUPTED
        record = detail.record
        assert (record.intent, record.queue, record.dialect) == ("claim", "claims", "en")
        assert record.confidence == pytest.approx(0.93)
        assert record.transcript == "I want to file a claim"
        assert record.path == ["need", "queue_claims"]

    def test_reopen_leaves_other_nodes_calls_running(self, open_store: OpenStore) -> None:
        store = open_store(node_id="node-a")
        store.call_started(CallRecord("a-1", "1", "2", T0))
        assert store.flush(5)
        other = open_store(node_id="node-b")
        assert other.recovered == 0
        detail = other.get_call("a-1")
        assert detail is not None and detail.in_progress

    def test_a_survivor_closes_the_calls_a_lost_node_left_in_progress(self, open_store: OpenStore) -> None:
        dead = open_store(node_id="node-a")
        calls = sample_calls()
        write_calls(dead, calls)
        dead.close()  # kill -9: node-a's live calls stay in progress until someone closes them
        survivor = open_store(node_id="node-b")
        survivor.call_started(CallRecord("b-1", "1", "2", T0))
        survivor.node_lost("node-a")
        survivor.node_lost("node-a")  # every copy of the ACD log may report it: harmless twice
        assert survivor.flush(5)
        for call in calls:
            detail = survivor.get_call(call.record.call_id)
            assert detail is not None and not detail.in_progress
            if not call.finished:
                assert detail.record.outcome is Outcome.INTERRUPTED
                assert detail.record.ended_at == call.events[-1].at
        mine = survivor.get_call("b-1")
        assert mine is not None and mine.in_progress and mine.record.outcome is None
        assert survivor.summary(T0 - timedelta(days=1), T0 + timedelta(days=1)).in_progress == 1

    def test_every_node_lists_every_nodes_calls_labelled_by_node(self, open_store: OpenStore) -> None:
        a, b = open_store(node_id="node-a"), open_store(node_id="node-b")
        a.call_started(CallRecord("a-1", "1", "95519", T0))
        b.call_started(CallRecord("b-1", "2", "95519", T0 + timedelta(seconds=1)))
        assert a.flush(5) and b.flush(5)
        page = b.list_calls(CallQuery())
        assert [r.call_id for r in page.records] == ["b-1", "a-1"]
        assert page.nodes == {"a-1": "node-a", "b-1": "node-b"}
        assert [r.call_id for r in a.list_calls(CallQuery(node_id="node-b")).records] == ["b-1"]
        assert record_to_json(page.records[1], node=page.nodes["a-1"])["node_id"] == "node-a"
        assert "node_id" not in record_to_json(page.records[1])

    def test_dispatch_log_round_trip(self, store: SqlStore) -> None:
        started = DispatchEntry(
            at=T0, action=DispatchAction.START, accepted=True, dispatch_id="d1", region="south",
            queues=("claims", "service"), helper_sites=("beijing", "上海"), until=T0 + timedelta(hours=6),
            reason="台风 typhoon surge", requested_by="ops-lead", detail="ok",
        )  # fmt: skip
        refused = DispatchEntry(
            at=T0 + timedelta(minutes=1), action=DispatchAction.START, accepted=False, region="south",
            helper_sites=("atlantis",), requested_by="ops-lead", detail="dispatch names unknown helper site",
        )  # fmt: skip
        ended = DispatchEntry(
            at=T0 + timedelta(hours=1), action=DispatchAction.END, accepted=True, dispatch_id="d1",
            region="south", queues=("claims", "service"), helper_sites=("beijing", "上海"),
        )  # fmt: skip
        for entry in (started, refused, ended):
            store.log_dispatch(entry)
        assert store.flush(5)
        assert store.dispatches() == [ended, refused, started]
        assert store.dispatches(limit=1) == [ended]

    def test_schema_version_recorded(self, open_store: OpenStore) -> None:
        first = open_store()
        assert first.schema_version >= 1
        assert open_store().schema_version == first.schema_version

    def test_commit_listener_hears_what_was_committed(self, store: SqlStore) -> None:
        heard: list[Committed] = []
        store.on_commit(heard.append)
        call = sample_calls()[0]
        write_calls(store, [call])
        assert sum(c.calls_finished for c in heard) == 1
        assert sum(c.events for c in heard) == len(call.events)
        assert call.record.call_id in {i for c in heard for i in c.call_ids}

    def test_closed_store_refuses_writes_and_reads(self, store: SqlStore) -> None:
        store.close()
        with pytest.raises(StoreClosed, match="call_started for call 'x'"):
            store.call_started(CallRecord("x", "1", "2", T0))
        with pytest.raises(StoreClosed):
            store.get_call("x")

    def test_purge_deletes_old_finished_calls_their_journeys_surveys_and_caller_dialects(
        self, store: SqlStore
    ) -> None:
        old, recent = T0 - timedelta(days=40), T0 - timedelta(days=2)
        for call_id, started, finished in (("old", old, True), ("old-live", old, False), ("new", recent, True)):
            record = CallRecord(call_id, "13800138000", "95519", started, ended_at=started + timedelta(minutes=2),
                                outcome=Outcome.SELF_SERVED)
            store.call_started(record)
            store.journey_event(JourneyEvent(call_id, 0, started, "greet", "entered", {}))
            if finished:
                store.call_finished(record)
                store.record_survey(call_id, 9)
        assert store.flush(5)
        conn = store._connect()
        for caller, at in (("13800000001", old), ("13800000002", recent)):
            conn.cursor().execute(
                store._q("INSERT INTO caller_dialects (caller, dialect, updated_at) VALUES (?, 'yue', ?)"),
                (caller, store._enc(at)),
            )
        conn.commit()
        conn.close()

        counts = store.purge(T0 - timedelta(days=30))

        assert (counts.calls, counts.journey_events, counts.surveys, counts.caller_dialects) == (1, 1, 1, 1)
        assert store.get_call("old") is None
        kept = store.get_call("new")
        assert kept is not None and kept.journey and kept.record.survey_score == 9
        live = store.get_call("old-live")
        assert live is not None and live.in_progress, "a call in progress is never purged"
        rows = store.reads.read("SELECT caller FROM caller_dialects", [])
        assert [r[0] for r in rows] == ["13800000002"]
        assert store.purge(T0 - timedelta(days=30)).calls == 0
