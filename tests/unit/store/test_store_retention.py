"""Retention: ages as operators write them, and the engine's daily purge driven by a fake clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from ivr.clock import FakeClock
from ivr.errors import ConfigError
from ivr.store.retention import PURGE_EVERY_S, PurgeCounts, parse_age, purge_all, run_retention


@pytest.mark.parametrize(("text", "age"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)), ("7", timedelta(days=7)),
])
def test_ages(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "soon", "30 days", "-3d", "1y"])
def test_bad_ages_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="bad age"):
        parse_age(text)


class RecordingStore:
    def __init__(self, loop: asyncio.AbstractEventLoop, fail_first: bool = False) -> None:
        self.cutoffs: list[datetime] = []
        self.purged = asyncio.Queue[datetime]()
        self._loop = loop
        self._fail_first = fail_first

    def purge(self, before: datetime) -> PurgeCounts:
        self.cutoffs.append(before)
        self._loop.call_soon_threadsafe(self.purged.put_nowait, before)
        if self._fail_first and len(self.cutoffs) == 1:
            raise OSError("database restarting")
        return PurgeCounts(calls=2, caller_dialects=1)


async def test_the_engine_purges_at_start_then_daily_and_survives_a_failed_purge() -> None:
    clock = FakeClock()
    store = RecordingStore(asyncio.get_running_loop(), fail_first=True)
    start = clock.wall()
    async with clock.autojump():
        task = asyncio.create_task(run_retention(store, 30, clock))
        for _ in range(3):
            await asyncio.wait_for(store.purged.get(), 10)
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    expected = [start + timedelta(seconds=PURGE_EVERY_S * n) - timedelta(days=30) for n in range(3)]
    assert store.cutoffs[:3] == expected


async def test_zero_days_keeps_everything() -> None:
    store = RecordingStore(asyncio.get_running_loop())
    await asyncio.wait_for(run_retention(store, 0, FakeClock()), 1)
    assert store.cutoffs == []


def test_purge_all_counts_caller_specific_renders_too() -> None:
    class Store:
        def purge(self, before: datetime) -> PurgeCounts:
            return PurgeCounts(calls=1)

    counts = purge_all(Store(), datetime(2026, 1, 1), [lambda before: 3, lambda before: 2])
    assert (counts.calls, counts.renders) == (1, 5)
