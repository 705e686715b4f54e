"""The media clock: one 20 ms tick for every call in the process, not one timer per call.

`TickClock` is the pure part: tick n is due at `start + n * period_s`, computed from the start
every time, so sleep error never accumulates. When the loop falls behind, the overdue ticks run
back to back (each session sends its frames in a short burst the far end's jitter buffer absorbs);
beyond `max_burst` the oldest are skipped (counted), so a long stall does not become a flood.

`MediaScheduler` is the adapter: it reads and arms the injected `Clock` (one `clock.call_at` for the
next deadline; the loop's own timer in production, a `FakeClock` in tests, so one driven clock runs a
whole call) and on each tick calls every registered sender with the tick number; a sender's cost is
its own callback (a frame lookup and a `sendto`). It also spreads periodic reports (RTCP, every 5 s)
over the ticks: each open session sits in one of `report_every_ticks` buckets and one bucket runs per tick.
`run_due()` runs a due tick at once, ahead of whatever work the caller is about to do (the SIP transport
calls it before each message: media first, issue 22), instead of after the rest of that loop turn.

A sender that raises keeps its place: a send error is a fact about one packet, never about the call
(a sender dropped on its first error left a call silent for good, issue 24). Senders handle their own
send errors; what reaches the scheduler is a bug, logged at most once per `error_log_every_s` per sender.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import structlog

from ivr.clock import Clock, LoopClock, TimerHandle

log = structlog.get_logger(__name__)

TickCallback = Callable[[int], None]
"""Called with the tick number: the media time in periods since the clock started."""
ReportCallback = Callable[[float], None]
"""Called with the clock's time, every `report_every_ticks` ticks."""


@dataclass(slots=True)
class TickClock:
    start: float
    period_s: float = 0.02
    max_burst: int = 5
    """Most overdue ticks run at once; older ones are skipped."""
    early_s: float = 0.0005
    """A tick counts as due this much before its deadline (timers may fire a little early)."""
    next_tick: int = 0
    ran: int = 0
    skipped: int = 0

    def deadline(self) -> float:
        """When the next tick is due."""
        return self.start + self.next_tick * self.period_s

    def due(self, now: float) -> range:
        """Ticks to run now, in order (empty if none is due); skips beyond `max_burst`."""
        last = math.floor((now + self.early_s - self.start) / self.period_s)
        if last < self.next_tick:
            return range(0)
        first = self.next_tick
        if last - first + 1 > self.max_burst:
            self.skipped += last - first + 1 - self.max_burst
            first = last - self.max_burst + 1
        self.next_tick = last + 1
        self.ran += last - first + 1
        return range(first, last + 1)


class MediaScheduler:
    """Drives every session's sending from one timer on the injected clock."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        period_s: float = 0.02,
        max_burst: int = 5,
        report_every_ticks: int = 250,
        error_log_every_s: float = 5.0,
    ) -> None:
        self._time: Clock = clock or LoopClock()
        self._period_s = period_s
        self._max_burst = max_burst
        self._error_log_every_s = error_log_every_s
        self._senders: dict[Hashable, TickCallback] = {}
        self._snapshot: tuple[tuple[Hashable, TickCallback], ...] | None = None
        self._buckets: list[dict[Hashable, ReportCallback]] = [{} for _ in range(report_every_ticks)]
        self._bucket_of: dict[Hashable, int] = {}
        self._fill_level = 0
        """No bucket holds fewer reporters than this (the next one goes to a bucket at this level)."""
        self._fill_cursor = 0
        self._clock: TickClock | None = None
        self._timer: TimerHandle | None = None
        self._errors_logged_at: dict[Hashable, float] = {}
        self.callback_errors = 0
        """Exceptions raised by senders and reporters (bugs: send errors are handled by the sessions)."""
        self.max_lateness_s = 0.0
        """Largest delay seen between a tick's deadline and its run (for metrics and benchmarks)."""

    @property
    def time(self) -> Clock:
        """The clock the ticks are read from and armed on."""
        return self._time

    @property
    def clock(self) -> TickClock | None:
        """The tick arithmetic while the media clock runs (None when idle)."""
        return self._clock

    @property
    def period_s(self) -> float:
        return self._period_s

    def current_tick(self) -> int:
        """The number of the next tick to run (0 when the clock is stopped)."""
        return self._clock.next_tick if self._clock is not None else 0

    def add_sender(self, key: Hashable, callback: TickCallback) -> None:
        self._senders[key] = callback
        self._snapshot = None
        self._ensure_running()

    def remove_sender(self, key: Hashable) -> None:
        if self._senders.pop(key, None) is not None:
            self._snapshot = None
        self._stop_if_idle()

    def has_sender(self, key: Hashable) -> bool:
        return key in self._senders

    def add_reporter(self, key: Hashable, callback: ReportCallback) -> None:
        """Call `callback` every `report_every_ticks` ticks; reporters keep the clock running."""
        if key in self._bucket_of:
            self._buckets[self._bucket_of[key]][key] = callback
            return
        index = self._emptiest_bucket()
        self._buckets[index][key] = callback
        self._bucket_of[key] = index
        self._ensure_running()

    def _emptiest_bucket(self) -> int:
        """A bucket with the fewest reporters, in amortized O(1): the cursor walks on to the next bucket at
        the fill level; after a full round with none, the level is recounted (a scan of every bucket for
        each new session was ~10 µs a call, issue 22)."""
        buckets = self._buckets
        while True:
            for _ in range(len(buckets)):
                index = self._fill_cursor
                self._fill_cursor = (index + 1) % len(buckets)
                if len(buckets[index]) <= self._fill_level:
                    return index
            self._fill_level = min(len(bucket) for bucket in buckets)

    def remove_reporter(self, key: Hashable) -> None:
        index = self._bucket_of.pop(key, None)
        if index is not None:
            self._buckets[index].pop(key, None)
            if len(self._buckets[index]) < self._fill_level:
                self._fill_level = len(self._buckets[index])
        self._errors_logged_at.pop(key, None)
        self._stop_if_idle()

    def close(self) -> None:
        self._senders.clear()
        self._snapshot = None
        for bucket in self._buckets:
            bucket.clear()
        self._bucket_of.clear()
        self._fill_level = 0
        self._stop_if_idle()

    def _ensure_running(self) -> None:
        if self._clock is None:
            self._clock = TickClock(self._time.now(), self._period_s, self._max_burst)
            self._arm()

    def _stop_if_idle(self) -> None:
        if not self._senders and not self._bucket_of and self._clock is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._clock = None

    def _arm(self) -> None:
        assert self._clock is not None
        self._timer = self._time.call_at(self._clock.deadline(), self._on_timer)

    def run_due(self) -> None:
        """Run the ticks that are due now, before the caller's own work: media first. The SIP transport
        calls it ahead of each message it handles, so a burst of signalling in one turn of the event
        loop delays the media clock by one message's work, not by the whole burst's."""
        clock = self._clock
        if clock is not None and self._time.now() + clock.early_s >= clock.deadline():
            if self._timer is not None:
                self._timer.cancel()
            self._on_timer()

    def _on_timer(self) -> None:
        clock = self._clock
        if clock is None:
            return
        now = self._time.now()
        lateness = now - clock.deadline()
        if lateness > self.max_lateness_s:
            self.max_lateness_s = lateness
        buckets = self._buckets
        for tick in clock.due(now):
            snapshot = self._snapshot
            if snapshot is None:
                snapshot = self._snapshot = tuple(self._senders.items())
            for key, callback in snapshot:
                try:
                    callback(tick)
                except Exception:  # one broken session must not silence every other call
                    self._callback_failed("media_tick_failed", key, now)
            bucket = buckets[tick % len(buckets)]
            if bucket:
                for key, report in tuple(bucket.items()):
                    try:
                        report(now)
                    except Exception:
                        self._callback_failed("media_report_failed", key, now)
        if self._clock is clock:
            self._arm()

    def _callback_failed(self, event: str, key: Hashable, now: float) -> None:
        """Count a callback's exception; log it with its traceback at most once per interval per key."""
        self.callback_errors += 1
        logged_at = self._errors_logged_at.get(key)
        if logged_at is None or now - logged_at >= self._error_log_every_s:
            self._errors_logged_at[key] = now
            log.exception(event, key=str(key), errors_total=self.callback_errors)


def _no_tick(tick: int) -> None:
    pass


class SenderSlot:
    """One sender's place on the media clock, taken and left as its owner starts and stops sending
    (a session: left while held silent or bridged, taken again after)."""

    __slots__ = ("_scheduler", "_callback")

    def __init__(self, scheduler: MediaScheduler, callback: TickCallback) -> None:
        self._scheduler = scheduler
        self._callback = callback

    @property
    def taken(self) -> bool:
        return self._scheduler.has_sender(self)

    def take(self) -> None:
        self._scheduler.add_sender(self, self._callback)

    def leave(self) -> None:
        self._scheduler.remove_sender(self)

    def release(self) -> None:
        """Leave for good (the owner closed): the slot lets go of the callback, a bound method of its owner,
        so the owner is freed by reference counting rather than by the GC (issue 22)."""
        self.leave()
        self._callback = _no_tick
