"""Time, injected: production code reads the event loop's clock, tests drive a fake one.

Pure protocol objects never read a clock; they take `now` as an argument. Async code receives a
`Clock` and waits through it (`sleep`, `sleep_until`, `timeout`, `timeout_at`, `call_at`), never
through `asyncio.sleep`/`asyncio.timeout`/`loop.call_at` directly, so one `FakeClock` drives every
wait of a call and a test of a 32-second timeout runs in microseconds, exactly reproducibly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol


class TimerHandle(Protocol):
    """A callback armed with `Clock.call_at`; `cancel()` disarms it (idempotent)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds for logic, wall time for records only, and every wait of async code."""

    def now(self) -> float: ...

    def wall(self) -> datetime: ...

    async def sleep_until(self, deadline: float) -> None: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` once at `deadline` (on the event loop), unless cancelled first."""
        ...

    def timeout_at(self, deadline: float | None) -> AbstractAsyncContextManager[object]:
        """Like `asyncio.timeout_at` on this clock: TimeoutError out of the block at `deadline`."""
        ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        """Like `asyncio.timeout` on this clock (None: no limit)."""
        ...


class ClockTimeout:
    """`asyncio.timeout_at` over any clock's `call_at`: the block's task is cancelled at the deadline
    and the cancellation leaves the block as TimeoutError (a cancel from elsewhere stays a cancel)."""

    def __init__(self, clock: Clock, deadline: float | None) -> None:
        self._clock = clock
        self._deadline = deadline
        self._task: asyncio.Task[object] | None = None
        self._handle: TimerHandle | None = None
        self._cancelling = 0
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a clock timeout must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if self._deadline is not None:
            self._handle = self._clock.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        assert self._task is not None
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class LoopClock:
    """The production clock: the running event loop's monotonic time and timers.

    `loop`: the one loop this clock is used on (the engine's); asking which loop runs costs a system
    call (CPython checks the process id), and an engine reads its clock dozens of times a call (issue 22).
    Without it, the loop running when asked.
    """

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def now(self) -> float:
        loop = self._loop
        return (asyncio.get_running_loop() if loop is None else loop).time()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - self.now()))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        loop = self._loop
        return (asyncio.get_running_loop() if loop is None else loop).call_at(deadline, callback)

    def timeout_at(self, deadline: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout_at(deadline)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


@dataclass(order=True, slots=True)
class _Timer:
    deadline: float
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told, for tests: `advance(seconds)`, or `autojump()`.

    Timers (`call_at`, and through it every sleep and timeout) fire in deadline order as `advance`
    passes them, each at its own `now()`; the tasks they wake run before the next one fires.
    """

    def __init__(self, start: float = 0.0, wall_start: datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        self._timers: list[_Timer] = []
        self._order = itertools.count()
        self._armed: asyncio.Event | None = None
        """Set when a timer is armed: the autojump task waits on it when no timer is pending."""

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._start)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        if deadline <= self._now:  # as the loop does: a deadline already passed fires on its next round
            return asyncio.get_running_loop().call_soon(callback)
        timer = _Timer(deadline, next(self._order), callback)
        heapq.heappush(self._timers, timer)
        if self._armed is not None:
            self._armed.set()
        return timer

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(deadline, wake)
        try:
            await future
        finally:
            timer.cancel()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + seconds)

    def timeout_at(self, deadline: float | None) -> AbstractAsyncContextManager[object]:
        return ClockTimeout(self, deadline)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return ClockTimeout(self, None if seconds is None else self._now + seconds)

    def next_deadline(self) -> float | None:
        """The earliest armed timer's deadline (None when nothing waits on this clock)."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].deadline if self._timers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer whose deadline is passed, one at a time."""
        target = self._now + seconds
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            timer = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            timer.callback()
            await _let_run()
        self._now = max(self._now, target)
        await asyncio.sleep(0)

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[None]:
        """Within the block, whenever every task waits, jump straight to the next deadline (the idea of
        trio's `MockClock(autojump_threshold=0)`): a test awaits what it wants and never advances by hand.

        "Every task waits" means the event loop has nothing ready to run. Work in threads
        (`asyncio.to_thread`) does not count as running: time may jump while a thread works.
        """
        self._armed = asyncio.Event()
        jumper = asyncio.get_running_loop().create_task(self._jump_when_idle(self._armed), name="fake-clock-autojump")
        try:
            yield
        finally:
            jumper.cancel()
            await asyncio.gather(jumper, return_exceptions=True)
            self._armed = None

    async def _jump_when_idle(self, armed: asyncio.Event) -> None:
        while True:
            await _until_idle()
            deadline = self.next_deadline()
            if deadline is None:
                armed.clear()
                await armed.wait()
                continue
            await self.advance(max(0.0, deadline - self._now))


async def _let_run(rounds: int = 5) -> None:
    """Let the tasks a timer woke run (and the ones they wake in turn) before the next timer fires."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _until_idle() -> None:
    """Return once nothing but this task is ready to run on the loop (asyncio's ready queue is empty).

    asyncio has no public "is the loop idle" question, so this reads the loop's ready queue where it
    exists (the default loops) and otherwise settles for many rounds of yielding.
    """
    loop = asyncio.get_running_loop()
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0)
        ready = getattr(loop, "_ready", None)
        quiet = quiet + 1 if ready is not None and not ready else (0 if ready is not None else quiet + 1)
        if ready is None:
            await _let_run(50)
