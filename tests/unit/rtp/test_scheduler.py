from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from ivr.clock import Clock, FakeClock
from ivr.rtp.scheduler import MediaScheduler, TickClock


def test_deadlines_are_computed_from_the_start_never_accumulated() -> None:
    clock = TickClock(start=100.0)
    ran: list[int] = []
    now = 100.0
    for _ in range(5000):  # wake up 0.3 ms late every time, as a timer would
        ran += list(clock.due(now))
        now = clock.deadline() + 0.0003
    assert ran == list(range(5000))
    assert clock.deadline() == pytest.approx(100.0 + 5000 * 0.02, abs=1e-9)


def test_nothing_is_due_before_the_deadline_and_early_wakeups_within_tolerance_count() -> None:
    clock = TickClock(start=0.0)
    assert list(clock.due(0.0)) == [0]
    assert list(clock.due(0.019)) == []  # 1 ms early: not yet
    assert list(clock.due(0.0196)) == [1]  # 0.4 ms early: within `early_s`


def test_falling_behind_catches_up_in_a_burst() -> None:
    clock = TickClock(start=0.0, max_burst=5)
    assert list(clock.due(0.0)) == [0]
    assert list(clock.due(0.0805)) == [1, 2, 3, 4]
    assert clock.deadline() == pytest.approx(0.1)


def test_a_long_stall_skips_the_oldest_ticks() -> None:
    clock = TickClock(start=0.0, max_burst=5)
    clock.due(0.0)
    assert list(clock.due(1.0001)) == [46, 47, 48, 49, 50]
    assert clock.skipped == 45
    assert clock.ran == 6


class StepClock:
    """Just enough of a `Clock` to drive `MediaScheduler` by hand, waking timers late on purpose:
    now() and call_at(). (`FakeClock` fires every timer exactly on time.)"""

    def __init__(self) -> None:
        self.time = 10.0
        self.timers: list[tuple[float, Callable[[], None], bool]] = []

    def now(self) -> float:
        return self.time

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        entry = [when, callback, False]
        self.timers.append(entry)  # type: ignore[arg-type]

        class Handle:
            def cancel(self) -> None:
                entry[2] = True

        return Handle()

    def armed(self) -> list[float]:
        return [when for when, _, cancelled in self.timers if not cancelled]

    def run_until(self, until: float, lateness: float = 0.0) -> None:
        while True:
            pending = sorted((t for t in self.timers if not t[2]), key=lambda t: t[0])
            if not pending or pending[0][0] > until:
                return
            when, callback, _ = pending[0]
            self.timers.remove(pending[0])
            self.time = when + lateness
            callback()


def make_scheduler(**kwargs: Any) -> tuple[MediaScheduler, StepClock]:
    clock = StepClock()
    return MediaScheduler(cast(Clock, clock), **kwargs), clock


def test_one_timer_drives_every_sender_each_tick() -> None:
    scheduler, loop = make_scheduler()
    calls: dict[str, list[int]] = {"a": [], "b": []}
    scheduler.add_sender("a", calls["a"].append)
    scheduler.add_sender("b", calls["b"].append)
    assert loop.armed() == [10.0]  # one timer, whatever the number of calls
    loop.run_until(10.1, lateness=0.001)
    assert calls["a"] == calls["b"] == [0, 1, 2, 3, 4, 5]
    assert len(loop.armed()) == 1
    assert loop.armed()[0] == pytest.approx(10.12)


def test_timer_is_armed_at_exact_deadlines_despite_late_wakeups() -> None:
    scheduler, loop = make_scheduler()
    scheduler.add_sender("a", lambda tick: None)
    deadlines = []
    for _ in range(100):
        deadlines += loop.armed()
        loop.run_until(loop.armed()[0], lateness=0.0017)
    assert deadlines == pytest.approx([10.0 + 0.02 * n for n in range(100)], abs=1e-9)
    assert scheduler.max_lateness_s == pytest.approx(0.0017)


def test_removing_the_last_sender_and_reporter_stops_the_timer() -> None:
    scheduler, loop = make_scheduler()
    scheduler.add_sender("a", lambda tick: None)
    scheduler.add_reporter("a", lambda now: None)
    scheduler.remove_sender("a")
    assert len(loop.armed()) == 1  # the reporter keeps the clock alive (RTCP while on hold)
    scheduler.remove_reporter("a")
    assert loop.armed() == []
    assert scheduler.current_tick() == 0


def test_reports_are_spread_over_the_interval() -> None:
    scheduler, loop = make_scheduler(report_every_ticks=10)
    seen: dict[int, list[float]] = {n: [] for n in range(20)}
    for n in range(20):
        scheduler.add_reporter(n, seen[n].append)
    loop.run_until(10.0 + 0.02 * 29)  # 30 ticks: three report rounds
    assert all(len(times) == 3 for times in seen.values())
    first_times = sorted({times[0] for times in seen.values()})
    assert len(first_times) == 10  # two reporters per bucket, ten buckets, ten different ticks


def test_a_failing_sender_keeps_its_place_and_is_logged_sparingly() -> None:
    scheduler, loop = make_scheduler(error_log_every_s=1.0)
    good: list[int] = []
    broken_ticks: list[int] = []

    def broken(tick: int) -> None:
        broken_ticks.append(tick)
        if tick < 60:
            raise RuntimeError("boom")

    scheduler.add_sender("broken", broken)
    scheduler.add_sender("good", good.append)
    with capture_logs() as logs:
        loop.run_until(10.0 + 0.02 * 70)
    assert good == broken_ticks == list(range(71))  # one bad tick never silences a call for good
    assert scheduler.has_sender("broken") and scheduler.callback_errors == 60
    assert [entry["event"] for entry in logs] == ["media_tick_failed", "media_tick_failed"]  # at 0 s and 1 s


def test_senders_added_mid_run_start_at_the_next_tick() -> None:
    scheduler, loop = make_scheduler()
    first: list[int] = []
    late: list[int] = []
    scheduler.add_sender("first", first.append)
    loop.run_until(10.04)
    scheduler.add_sender("late", late.append)
    loop.run_until(10.08)
    assert first == [0, 1, 2, 3, 4]
    assert late == [3, 4]


async def test_the_media_clock_runs_on_a_driven_fake_clock() -> None:
    clock = FakeClock(start=100.0)
    ticks: list[int] = []
    reports: list[float] = []
    scheduler = MediaScheduler(clock, report_every_ticks=25)
    scheduler.add_sender("a", ticks.append)
    scheduler.add_reporter("a", reports.append)
    await asyncio.sleep(0)  # tick 0 is due at once: it runs on the loop's next round, as with loop.call_at
    await clock.advance(1.0)
    assert ticks == list(range(51))  # ticks at 100.00, 100.02 ... 101.00, none late
    assert reports == pytest.approx([100.0, 100.5, 101.0])
    assert scheduler.max_lateness_s == 0.0
    scheduler.close()
    assert clock.next_deadline() is None


def test_a_due_tick_runs_first_when_other_work_asks() -> None:
    """Media first: the SIP transport calls `run_due` before each message; a due tick runs then, not
    after the rest of the loop's turn, and its timer does not run it a second time."""
    scheduler, loop = make_scheduler()
    ticks: list[int] = []
    scheduler.add_sender("a", ticks.append)
    loop.run_until(10.0)
    assert ticks == [0]
    loop.time = 10.015  # before the next deadline (10.02): nothing is due
    scheduler.run_due()
    assert ticks == [0]
    loop.time = 10.0205  # due, but the timer has not fired yet (the loop is busy)
    scheduler.run_due()
    assert ticks == [0, 1]
    assert loop.armed() == [pytest.approx(10.04)]
    loop.run_until(10.04)
    assert ticks == [0, 1, 2]


def test_run_due_is_a_no_op_when_the_media_clock_is_stopped() -> None:
    scheduler, loop = make_scheduler()
    scheduler.run_due()
    assert loop.armed() == []


def test_a_new_reporter_goes_to_a_bucket_with_the_fewest_even_after_removals() -> None:
    scheduler, _ = make_scheduler(report_every_ticks=4)
    for n in range(8):  # two in every bucket
        scheduler.add_reporter(n, lambda now: None)

    def sizes() -> list[int]:
        return sorted(len(bucket) for bucket in scheduler._buckets)

    assert sizes() == [2, 2, 2, 2]
    emptied = scheduler._bucket_of[5]
    for key in [k for k, index in scheduler._bucket_of.items() if index == emptied]:
        scheduler.remove_reporter(key)
    scheduler.remove_reporter(next(k for k, index in scheduler._bucket_of.items() if index != emptied))
    assert sizes() == [0, 1, 2, 2]
    scheduler.add_reporter("x", lambda now: None)
    assert scheduler._bucket_of["x"] == emptied
    scheduler.add_reporter("y", lambda now: None)  # then the two buckets of one, in turn
    scheduler.add_reporter("z", lambda now: None)
    assert sizes() == [2, 2, 2, 2]
