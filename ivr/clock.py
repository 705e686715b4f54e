"""Time, injected: production code reads the event loop's clock, tests drive a fake one.

Pure protocol objects never read a clock; they take `now` as an argument. Async code receives a
`Clock`, so a test of a 32-second timeout runs in microseconds and is exactly reproducible.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for logic, wall time for records only."""

    def now(self) -> float: ...

    def wall(self) -> datetime: ...

    async def sleep_until(self, deadline: float) -> None: ...


class LoopClock:
    """The production clock: the running event loop's monotonic time."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(order=True, slots=True)
class _Sleeper:
    deadline: float
    order: int
    future: asyncio.Future[None] = field(compare=False)


class FakeClock:
    """A clock that moves only when told (`advance`), for tests.

    Tasks waiting in `sleep_until` wake, in deadline order, when `advance` passes their deadline.
    """

    def __init__(self, start: float = 0.0, wall_start: datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        self._sleepers: list[_Sleeper] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._start)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, _Sleeper(deadline, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline is passed, one at a time."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0].deadline <= target:
            sleeper = heapq.heappop(self._sleepers)
            self._now = max(self._now, sleeper.deadline)
            if not sleeper.future.done():
                sleeper.future.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)

    def pending_deadlines(self) -> list[float]:
        return sorted(s.deadline for s in self._sleepers if not s.future.done())
