from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from ivr.web import AgentPresence, ChangeKind, FlowLoadStatus, FlowStatus, LiveChange, LiveState

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_call_moves_from_ivr_to_queue_to_agent_and_away() -> None:
    live = LiveState()
    live.agent_changed("a1", AgentPresence.AVAILABLE, at(0), name="王芳", queues=["claims"])
    live.call_started("c1", "13800000000", "95500", at(0), dialect="yue")
    live.call_progressed("c1", node="ask_need")
    snap = live.snapshot(at(1))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (1, 0, 0)
    assert snap.recent[0].node == "ask_need"

    live.call_enqueued("c1", "claims", at(10), context={"intent": "claim_status"})
    snap = live.snapshot(at(25))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (0, 1, 0)
    assert snap.queues[0].queue == "claims"
    assert snap.queues[0].waiting == 1 and snap.queues[0].longest_wait_s == 15.0
    assert snap.queues[0].agents_available == 1

    live.call_answered("c1", "a1", at(30))
    live.agent_changed("a1", AgentPresence.IN_CALL, at(30))
    snap = live.snapshot(at(40))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (0, 0, 1)
    assert snap.agents_by_state[AgentPresence.IN_CALL] == 1
    current = live.current_call("a1", at(40))
    assert current is not None
    assert current.call_id == "c1" and current.wait_s == 20.0 and current.context["intent"] == "claim_status"

    live.call_ended("c1")
    assert live.current_call("a1", at(50)) is None
    snap = live.snapshot(at(50))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (0, 0, 0)
    assert snap.queues[0].waiting == 0  # the queue is still listed, now empty
    assert live.calls_started_total == 1


def test_updates_for_unknown_calls_are_ignored() -> None:
    live = LiveState()
    live.call_progressed("nope", node="x")
    live.call_enqueued("nope", "q", T0)
    live.call_answered("nope", "a", T0)
    live.call_ended("nope")
    assert live.snapshot(T0).in_ivr == 0


def test_listeners_hear_each_change_and_a_failing_listener_is_contained() -> None:
    live = LiveState()
    heard: list[LiveChange] = []

    def broken(_change: LiveChange) -> None:
        raise RuntimeError("dashboard bug")

    live.on_change(broken)
    unsubscribe = live.on_change(heard.append)
    with structlog.testing.capture_logs() as logs:
        live.call_started("c1", "1", "2", T0)
        live.agent_changed("a1", AgentPresence.ON_BREAK, T0)
        live.flow_status(FlowStatus("hotline", "v1", FlowLoadStatus.LOADED, T0))
    assert heard == [
        LiveChange(ChangeKind.CALL, "c1"),
        LiveChange(ChangeKind.AGENT, "a1"),
        LiveChange(ChangeKind.FLOW, "hotline"),
    ]
    assert [e["event"] for e in logs] == ["live_listener_failed"] * 3
    unsubscribe()
    live.call_ended("c1")
    assert len(heard) == 3


def test_a_failed_reload_keeps_the_version_in_service() -> None:
    live = LiveState()
    live.flow_status(FlowStatus("hotline", "v7", FlowLoadStatus.LOADED, T0, path="flows/hotline.yaml"))
    live.flow_status(
        FlowStatus(
            "hotline", "", FlowLoadStatus.FAILED, at(60), ("flows/hotline.yaml:42:7: unknown node 'agnet'",)
        )
    )
    (flow,) = live.flows()
    assert flow.version == "v7" and flow.status is FlowLoadStatus.FAILED
    assert flow.errors == ("flows/hotline.yaml:42:7: unknown node 'agnet'",)
    assert flow.path == "flows/hotline.yaml"


def test_agent_state_since_changes_only_on_a_new_state() -> None:
    live = LiveState()
    live.agent_changed("a1", AgentPresence.AVAILABLE, at(0))
    live.agent_changed("a1", AgentPresence.AVAILABLE, at(5), region="guangzhou")
    agent = live.agent("a1")
    assert agent is not None and agent.since == at(0) and agent.region == "guangzhou"
    live.agent_changed("a1", AgentPresence.WRAP_UP, at(9))
    assert live.agent("a1").since == at(9)  # type: ignore[union-attr]
    live.agent_removed("a1")
    assert live.agent("a1") is None and live.agents() == []
