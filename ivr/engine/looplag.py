"""How late the event loop runs: a periodic timer on the engine's `Clock` measures its own lateness.

Every call's media is sent from one 20 ms timer (`ivr.rtp.scheduler`); anything that holds the loop
(a garbage collection of a large heap, a blocking write, a burst of signalling) delays that timer
and every call hears the gap at once (issue 22: a 193 ms stall at 1,000 calls was ten lost packets
on every call). This monitor wakes every `interval_s` and records how late it woke, in
`ivr_event_loop_lag_seconds` on `/metrics`; a stall past `stall_s` is also logged (at most once per
`log_every_s`, with how many there were since), so an operator can match it with what else happened.

`LagMeter` is the pure part (wake-ups in, lag out; the next deadline counted from the start, so the
meter never drifts and a long stall is one sample, not a burst of catch-up samples);
`LoopLagMonitor` arms it on the clock (a `FakeClock` in tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ivr.clock import Clock, TimerHandle

log = structlog.get_logger(__name__)

INTERVAL_S = 0.05
"""Between two measurements: 20 wake-ups a second cost nothing next to the media clock's 50."""
STALL_S = 0.04
"""A lag worth a log line: two RTP packets late on every call."""
LOG_EVERY_S = 10.0


@dataclass(slots=True)
class LagMeter:
    """Wake-ups of a timer due every `interval_s` from `start`: how late each was, and the worst."""

    start: float
    interval_s: float = INTERVAL_S
    due_at: float = math.nan
    worst_s: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        self.due_at = self.start + self.interval_s

    def woke(self, now: float) -> float:
        """Record a wake-up at `now`; returns its lag (0 if early) and moves `due_at` past `now`."""
        lag = max(0.0, now - self.due_at)
        self.samples += 1
        self.worst_s = max(self.worst_s, lag)
        periods = math.floor((now - self.start) / self.interval_s) + 1
        self.due_at = self.start + max(periods, 1) * self.interval_s
        return lag


class LoopLagMonitor:
    """Runs a `LagMeter` on `clock` and hands each lag to `observe` (a histogram's `observe`)."""

    def __init__(
        self,
        clock: Clock,
        observe: Callable[[float], None],
        *,
        interval_s: float = INTERVAL_S,
        stall_s: float = STALL_S,
        log_every_s: float = LOG_EVERY_S,
    ) -> None:
        self._clock = clock
        self._observe = observe
        self._interval_s = interval_s
        self._stall_s = stall_s
        self._log_every_s = log_every_s
        self._meter: LagMeter | None = None
        self._timer: TimerHandle | None = None
        self._logged_at = -math.inf
        self.stalls = 0
        """Wake-ups later than `stall_s` since start."""
        self._stalls_unlogged = 0

    @property
    def meter(self) -> LagMeter | None:
        """The running meter (None when stopped)."""
        return self._meter

    def start(self) -> None:
        if self._meter is None:
            self._meter = LagMeter(self._clock.now(), self._interval_s)
            self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._meter = None

    def _arm(self) -> None:
        assert self._meter is not None
        self._timer = self._clock.call_at(self._meter.due_at, self._on_timer)

    def _on_timer(self) -> None:
        meter = self._meter
        if meter is None:
            return
        now = self._clock.now()
        lag = meter.woke(now)
        self._observe(lag)
        if lag > self._stall_s:
            self.stalls += 1
            self._stalls_unlogged += 1
            if now - self._logged_at >= self._log_every_s:
                log.warning("event_loop_stalled", lag_ms=round(lag * 1000, 1), stalls=self._stalls_unlogged,
                            worst_ms=round(meter.worst_s * 1000, 1))
                self._logged_at = now
                self._stalls_unlogged = 0
        self._arm()


__all__ = ["LagMeter", "LoopLagMonitor"]
