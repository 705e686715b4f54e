from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from ivr.clock import FakeClock, TimerHandle
from ivr.engine.looplag import LagMeter, LoopLagMonitor


class StallingClock(FakeClock):
    """A FakeClock whose next armed timer runs `stall_s` after its deadline: the loop was held."""

    def __init__(self) -> None:
        super().__init__()
        self.stall_s = 0.0

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        late, self.stall_s = self.stall_s, 0.0
        return super().call_at(deadline + late, callback)


def test_meter_on_time_is_zero_lag() -> None:
    meter = LagMeter(start=10.0, interval_s=0.05)
    assert meter.due_at == pytest.approx(10.05)
    assert meter.woke(10.05) == 0.0
    assert meter.due_at == pytest.approx(10.10)


def test_meter_measures_lateness_and_keeps_its_schedule() -> None:
    meter = LagMeter(start=0.0, interval_s=0.05)
    assert meter.woke(0.08) == pytest.approx(0.03)
    assert meter.due_at == pytest.approx(0.10)  # counted from the start: no drift
    assert meter.worst_s == pytest.approx(0.03)


def test_meter_counts_a_long_stall_once() -> None:
    meter = LagMeter(start=0.0, interval_s=0.05)
    assert meter.woke(0.55) == pytest.approx(0.50)
    assert meter.due_at == pytest.approx(0.60)  # the missed wake-ups are not made up in a burst
    assert meter.woke(0.60) == 0.0
    assert meter.samples == 2


def test_meter_woken_early_reports_no_lag() -> None:
    meter = LagMeter(start=0.0, interval_s=0.05)
    assert meter.woke(0.0499) == 0.0
    assert meter.due_at == pytest.approx(0.05)


async def test_monitor_observes_every_interval_on_the_clock() -> None:
    clock = FakeClock()
    lags: list[float] = []
    monitor = LoopLagMonitor(clock, lags.append, interval_s=0.05)
    monitor.start()
    await clock.advance(1.0)
    assert lags == [0.0] * 20
    monitor.stop()
    await clock.advance(1.0)
    assert len(lags) == 20
    assert monitor.meter is None


async def test_monitor_reports_a_stall_and_logs_it_once_per_interval() -> None:
    clock = StallingClock()
    lags: list[float] = []
    monitor = LoopLagMonitor(clock, lags.append, interval_s=0.05, stall_s=0.04, log_every_s=10.0)
    monitor.start()
    await clock.advance(0.2)
    with capture_logs() as logs:
        clock.stall_s = 0.12  # the next wake-up is held 120 ms
        await clock.advance(0.3)
        clock.stall_s = 0.06
        await clock.advance(0.3)
    assert [round(lag, 3) for lag in lags if lag > 0] == [0.12, 0.06]
    assert monitor.stalls == 2
    stalled = [entry for entry in logs if entry["event"] == "event_loop_stalled"]
    assert len(stalled) == 1
    assert stalled[0]["lag_ms"] == pytest.approx(120.0)
    assert stalled[0]["log_level"] == "warning"
    monitor.stop()


async def test_monitor_ignores_a_small_lag_in_its_log() -> None:
    clock = StallingClock()
    lags: list[float] = []
    monitor = LoopLagMonitor(clock, lags.append, interval_s=0.05, stall_s=0.04)
    monitor.start()
    with capture_logs() as logs:
        clock.stall_s = 0.01
        await clock.advance(0.5)
    assert max(lags) == pytest.approx(0.01)
    assert monitor.stalls == 0
    assert not [entry for entry in logs if entry["event"] == "event_loop_stalled"]
    monitor.stop()
