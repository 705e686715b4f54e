"""Garbage collection for a process of long-lived calls: freeze what start-up built, collect young
objects less often, and measure every pause.

A running engine holds two kinds of objects: what start-up built and keeps for good (modules, flows,
prompt audio, speech models, the ACD's tables: ~350,000 objects), and the calls' (dialogs,
transactions, sessions: alive for minutes). CPython's cyclic collector walks every tracked object of
a generation on each collection of it, on the event loop's thread: with the defaults (700, 10, 10) a
full collection came every few seconds at 1,000 calls with churn and took ~250 ms, walking the
start-up heap each time (measured: bench/RESULTS.md, media_calls with `ivr_gc_pause_seconds`).

`after_start_up()` runs once the engine is ready: one full collection, then `gc.freeze()` moves every
surviving object to the permanent generation, which no collection walks again (a full collection of
the start-up heap: 0.2-0.6 s before, ~0 after); the thresholds then make collections rarer.
`GcPauseObserver` times each collection through `gc.callbacks` and hands (generation, seconds) on,
for the `ivr_gc_pause_seconds` histogram.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

THRESHOLDS = (20_000, 3, 100)
"""Net allocations before a young collection, young collections per middle one, middle ones per full one
(CPython's defaults: 700, 10, 10). Measured at 1,000 calls with 100 short calls/s of churn
(bench/RESULTS.md, issue 22): the defaults ran five full collections a minute (~140 ms each even after
the freeze: they walk every live call's objects); (10000, 20, 50) none, but middle collections of up
to 250 ms (twenty young generations of survivors); (20000, 3, 100) none, middle ones up to 100 ms, the
fewest late media packets. Full collections still come, only rarer: plan for one every few minutes."""


@dataclass(slots=True, frozen=True)
class GcTuning:
    """What `after_start_up` did, for its log line and the benchmark notes."""

    frozen: int
    """Objects moved to the permanent generation."""
    full_before_s: float
    """A full collection of the start-up heap (what every full collection cost before the freeze)."""
    full_after_s: float
    """A full collection right after the freeze (what one costs now, before calls add to the heap)."""


def after_start_up(thresholds: tuple[int, int, int] = THRESHOLDS,
                   timer: Callable[[], float] = time.perf_counter) -> GcTuning:
    """Collect once, freeze the survivors, set `thresholds`; timing a full collection before and after."""
    started = timer()
    gc.collect()
    collected = timer()
    gc.freeze()
    frozen = timer()
    gc.collect()
    tuning = GcTuning(gc.get_freeze_count(), collected - started, timer() - frozen)
    gc.set_threshold(*thresholds)
    log.info("gc_tuned", frozen=tuning.frozen, thresholds=list(thresholds),
             full_before_ms=round(tuning.full_before_s * 1000, 1), full_after_ms=round(tuning.full_after_s * 1000, 1))
    return tuning


PauseSink = Callable[[int, float], None]
"""Called with a collection's generation (0, 1, 2) and its pause in seconds."""


class GcPauseObserver:
    """Times every garbage collection (`gc.callbacks`) and reports it to `sink`; `close()` unhooks."""

    def __init__(self, sink: PauseSink, timer: Callable[[], float] = time.perf_counter) -> None:
        self._sink = sink
        self._timer = timer
        self._started = 0.0
        self.worst_s = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._timer()
            return
        pause = self._timer() - self._started
        self.worst_s = max(self.worst_s, pause)
        self._sink(info["generation"], pause)

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


__all__ = ["THRESHOLDS", "GcPauseObserver", "GcTuning", "after_start_up"]
