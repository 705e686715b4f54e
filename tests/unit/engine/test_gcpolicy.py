from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ivr.engine.gcpolicy import GcPauseObserver, after_start_up


@pytest.fixture
def gc_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_after_start_up_freezes_the_heap_and_sets_thresholds(gc_restored: None) -> None:
    kept = [object() for _ in range(10)]
    ticks = iter([0.0, 0.3, 0.3, 0.31])
    tuning = after_start_up((5000, 15, 25), timer=lambda: next(ticks))
    assert tuning.frozen > len(kept)
    assert gc.get_freeze_count() > 0
    assert tuning.full_before_s == pytest.approx(0.3)
    assert tuning.full_after_s == pytest.approx(0.01)
    assert gc.get_threshold() == (5000, 15, 25)


def test_pause_observer_reports_each_collection_with_its_generation() -> None:
    ticks = iter([1.0, 1.25, 2.0, 2.5])
    pauses: list[tuple[int, float]] = []
    observer = GcPauseObserver(lambda generation, seconds: pauses.append((generation, seconds)),
                               timer=lambda: next(ticks))
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        observer.close()
    gc.collect()
    assert pauses == [(2, 0.25), (0, 0.5)]
    assert observer.worst_s == 0.5
