"""Load runs: loopback-only targets, bounded plans, and the report's figures from call samples."""

from __future__ import annotations

import pytest

from ivr.testing.caller import AwaitPrompt
from ivr.testing.load import CallSample, FailureCause, LoadError, LoadPlan, LoadReport, loopback_host
from ivr.testing.scenario import Expect, Scenario

SCENARIO = Scenario(name="quick", caller="13700000001", steps=(AwaitPrompt(),), expect=Expect(queue="general"))


@pytest.mark.parametrize(("uri", "host"), [
    ("sip:95519@127.0.0.1", "127.0.0.1"), ("sip:95519@127.0.0.1:5060", "127.0.0.1"), ("sip:95519@[::1]:5060", "::1"),
    ("sip:95519@localhost;transport=udp", "localhost"), ("sip:95519@127.9.9.9", "127.9.9.9"),
])
def test_loopback_targets_are_accepted(uri: str, host: str) -> None:
    assert loopback_host(uri) == host


@pytest.mark.parametrize(("uri", "message"), [
    ("sip:95519@10.0.0.5:5060", "10.0.0.5 is not a loopback address"),
    ("sip:95519@example.com", "host 'example.com' is not an IP address"),
    ("sip:95519@8.8.8.8", "8.8.8.8 is not a loopback address"),
])
def test_other_targets_are_refused_with_the_reason(uri: str, message: str) -> None:
    with pytest.raises(LoadError, match=message):
        LoadPlan(uri, (SCENARIO,), cps=10, duration_s=5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cps": 0}, "--cps 0"), ({"duration_s": 7200}, "--duration 7200"), ({"max_calls": 0}, "--max-calls 0"),
])
def test_plans_are_bounded(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"cps": 10, "duration_s": 5} | kwargs
    with pytest.raises(LoadError, match=message):
        LoadPlan("sip:95519@127.0.0.1", (SCENARIO,), **args)  # type: ignore[arg-type]


def test_call_count_is_rate_times_duration_capped() -> None:
    assert LoadPlan("sip:1@127.0.0.1", (SCENARIO,), cps=20, duration_s=30).calls == 600
    assert LoadPlan("sip:1@127.0.0.1", (SCENARIO,), cps=20, duration_s=30, max_calls=50).calls == 50


def test_report_figures() -> None:
    plan = LoadPlan("sip:1@127.0.0.1", (SCENARIO,), cps=4, duration_s=1)
    report = LoadReport(plan, samples=[
        CallSample("quick", setup_s=0.010, packets_received=990, packets_lost=10, jitter_ms=0.5),
        CallSample("quick", setup_s=0.030, packets_received=1000, jitter_ms=1.5),
        CallSample("quick", status=503, cause=FailureCause.SIP_STATUS, detail="SIP 503"),
        CallSample("quick", setup_s=0.020, packets_received=1000, cause=FailureCause.EXPECTATION,
                   detail="expected queue 'general'"),
    ])
    figures = report.to_dict()
    assert figures["answered"] == 3 and figures["answer_rate"] == 0.75
    assert figures["setup_ms"]["p50"] == 20.0 and figures["setup_ms"]["max"] == 30.0
    assert figures["failures"] == {"sip-status: SIP 503": 1, "expectation: expected queue 'general'": 1}
    assert figures["audio"]["packets_lost"] == 10 and figures["audio"]["loss_pct"] == pytest.approx(0.3333, abs=1e-3)
    assert figures["audio"]["jitter_ms_max"] == 1.5
    assert not report.passed
    assert "FAILED" in report.render_text()


def test_the_generator_collects_garbage_as_the_engine_does_without_loading_the_engine() -> None:
    # One policy for both (the generator once kept a copy of the engine's thresholds, because importing any part
    # of ivr.engine loaded the whole engine: 0.7 s of CPU at each `ivr load`).
    import subprocess
    import sys

    from ivr.engine import gcpolicy
    from ivr.testing import load

    assert load.gcpolicy is gcpolicy
    probe = "import sys, ivr.testing.load; print('ivr.engine.app' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


async def test_the_generator_loop_lag_is_measured_on_its_clock() -> None:
    from ivr.clock import FakeClock
    from ivr.testing.load import LoopLag

    clock, lag = FakeClock(), LoopLag()
    lag.start(clock)
    await clock.advance(0.5)  # on time: ten wake-ups, no lag
    assert (lag.samples, lag.worst_s) == (10, 0.0)
    lag.stop()
    await clock.advance(1.0)
    assert lag.samples == 10
    for late_s in (0.01, 0.05, 0.3):
        lag.observe(late_s)
    assert (lag.over_40ms, lag.over_100ms, lag.worst_s) == (2, 1, 0.3)
    assert LoadReport(LoadPlan("sip:95519@127.0.0.1", (SCENARIO,), cps=1, duration_s=1)).to_dict()[
        "generator_loop_lag"] == {"samples": 0, "over_40ms": 0, "over_100ms": 0, "worst_ms": 0.0}
