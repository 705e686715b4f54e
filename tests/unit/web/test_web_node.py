"""A node of workers as one node (issue 22): worker 0's live state mirrors the other workers' calls, and its
/metrics merges their expositions (pure parts of `ivr.web.node`, `ivr.web.nodemetrics`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from ivr.web import AgentPresence, EngineMetrics, LiveState
from ivr.web.live import LiveChange
from ivr.web.nodemetrics import merge_expositions

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def worker_with_calls() -> LiveState:
    """Worker 1: one caller waiting in claims, one talking to agent a1."""
    w1 = LiveState()
    w1.call_started("w1-wait", "13800000001", "95500", at(0), dialect="yue")
    w1.call_enqueued("w1-wait", "claims", at(5), context={"intent": "claim_status"}, priority=2)
    w1.call_started("w1-talk", "13800000002", "95500", at(1))
    w1.call_enqueued("w1-talk", "claims", at(6))
    w1.call_answered("w1-talk", "a1", at(8))
    return w1


def test_worker_0_shows_the_calls_another_worker_holds_and_drops_them_when_it_goes() -> None:
    w0 = LiveState()
    w0.agent_changed("a1", AgentPresence.IN_CALL, at(8), queues=["claims"])
    w0.call_started("w0-ivr", "13800000003", "95500", at(2))
    changes: list[LiveChange] = []
    w0.on_change(changes.append)

    w0.calls_elsewhere("w1", worker_with_calls().own_calls_json())
    snap = w0.snapshot(at(20))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (1, 1, 1)
    assert {c.call_id for c in snap.recent} == {"w0-ivr", "w1-wait", "w1-talk"}
    claims = next(q for q in snap.queues if q.queue == "claims")
    assert claims.waiting == 1 and claims.longest_wait_s == 15.0
    assert w0.holder("w0-ivr") == "" and w0.holder("w1-talk") == "w1" and w0.holder("gone") is None
    current = w0.current_call("a1", at(20))  # answered on worker 1: the screen-pop is found there
    assert current is not None and current.call_id == "w1-talk" and current.wait_s == 2.0
    assert w0.agent("a1") is not None and w0.agent("a1").call_id == "w1-talk"  # type: ignore[union-attr]
    assert w0.calls_started_total == 1, "this process's own calls only (/metrics sums the workers')"
    assert [c.key for c in changes] == ["*"], "one change for a whole push"

    w0.calls_elsewhere("w1", [])
    snap = w0.snapshot(at(30))
    assert (snap.in_ivr, snap.in_queue, snap.with_agent) == (1, 0, 0)
    assert w0.holder("w1-talk") is None


def test_a_call_survives_the_round_trip_and_a_malformed_one_is_dropped_with_a_warning() -> None:
    w1 = worker_with_calls()
    w0 = LiveState()
    with structlog.testing.capture_logs() as logs:
        w0.calls_elsewhere("w1", [*w1.own_calls_json(), {"call_id": "x", "started_at": "not a time"}])
    assert sorted(c["call_id"] for c in w0.snapshot(at(9)).to_json()["recent"]) == ["w1-talk", "w1-wait"]
    assert [e["event"] for e in logs] == ["live_mirror_bad_call"]
    mirrored = LiveState()
    mirrored.calls_elsewhere("w1", w1.own_calls_json())
    assert mirrored.snapshot(at(9)) == w1.snapshot(at(9))


def exposition(calls: int, active: int, lag: tuple[float, ...], cpu: float, started: float) -> str:
    metrics = EngineMetrics()
    metrics.calls_total.inc(calls)
    metrics.calls_active.set(active)
    metrics.agents.labels("available").set(3)
    metrics.errors.labels(kind="http").inc()
    for value in lag:
        metrics.event_loop_lag.observe(value)
    metrics.registry._collectors.clear()  # no live process figures: fixed ones below
    metrics._process.cpu.labels().value = cpu
    metrics._process.start_time.set(started)
    metrics._process.max_fds.set(1024)
    return metrics.render()


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_the_node_metrics_sum_counters_and_histograms_and_keep_the_fronts_live_gauges() -> None:
    front = exposition(calls=3, active=5, lag=(0.001, 0.03), cpu=10.0, started=1000.0)
    other = exposition(calls=4, active=2, lag=(0.001,), cpu=7.5, started=900.0)
    merged = merge_expositions([front, other])
    got = samples(merged)
    assert got["ivr_calls_total"] == 7
    assert got['ivr_errors_total{kind="http"}'] == 2
    assert got['ivr_event_loop_lag_seconds_bucket{le="0.001"}'] == 2
    assert got['ivr_event_loop_lag_seconds_bucket{le="+Inf"}'] == 3
    assert got["ivr_event_loop_lag_seconds_count"] == 3
    assert got["process_cpu_seconds_total"] == 17.5
    assert got["ivr_calls_active"] == 5, "worker 0 counts the node's calls already"
    assert got['ivr_agents{state="available"}'] == 3
    assert got["process_max_fds"] == 1024 and got["process_start_time_seconds"] == 900.0
    assert sum(1 for line in merged.splitlines() if line.startswith("# TYPE ivr_calls_total ")) == 1
    assert list(samples(merged)) == list(samples(front)), "the front's order, nothing lost or added"


def test_a_line_that_is_not_a_sample_is_left_out_of_the_merge() -> None:
    merged = merge_expositions(["# TYPE a counter\na 1\n", "# TYPE a counter\na x\nb\na 2\n"])
    assert merged == "# TYPE a counter\na 3\n"
