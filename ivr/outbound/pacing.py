"""Pacing of one trunk: at most `calls_per_s` new calls per second and `max_concurrent` up at once.

A token bucket of one call (no bursts: calls are spread evenly), times passed in (monotonic seconds).
"""

from __future__ import annotations


class Pacer:
    def __init__(self, calls_per_s: float, max_concurrent: int) -> None:
        if calls_per_s <= 0 or max_concurrent < 1:
            raise ValueError("pacing needs calls_per_s > 0 and max_concurrent >= 1")
        self.interval = 1.0 / calls_per_s
        self.max_concurrent = max_concurrent
        self.active = 0
        self._next_start: float | None = None

    def may_start(self, now: float) -> bool:
        return self.active < self.max_concurrent and (self._next_start is None or now >= self._next_start)

    def next_start(self, now: float) -> float | None:
        """When a call may start next; None while every line is busy (an end frees one)."""
        if self.active >= self.max_concurrent:
            return None
        return now if self._next_start is None else max(now, self._next_start)

    def started(self, now: float) -> None:
        self.active += 1
        # Even spacing from the scheduled slot, not from `now`: a late tick does not lose the rate,
        # but an idle trunk does not bank calls either.
        base = now if self._next_start is None else max(self._next_start, now - self.interval)
        self._next_start = base + self.interval

    def ended(self) -> None:
        self.active = max(0, self.active - 1)
