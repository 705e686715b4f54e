from __future__ import annotations

import asyncio

import pytest

from ivr.clock import Clock, FakeClock, LoopClock


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 0.5))]
    await asyncio.sleep(0)
    await clock.advance(1.0)
    assert woke == [("a", 0.5)]
    await clock.advance(1.0)
    assert woke == [("a", 0.5), ("b", 2.0)]
    assert clock.now() == 2.0
    await asyncio.gather(*tasks)


async def test_a_sleep_woken_by_a_timer_can_arm_an_earlier_one_inside_the_same_advance() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def chain() -> None:
        await clock.sleep(1.0)
        woke.append(clock.now())
        await clock.sleep(0.5)
        woke.append(clock.now())

    task = asyncio.create_task(chain())
    await asyncio.sleep(0)
    await clock.advance(3.0)
    assert woke == [1.0, 1.5]
    assert clock.now() == 3.0
    await task


async def test_timeout_raises_timeout_error_at_its_deadline_and_not_before() -> None:
    clock = FakeClock()
    never: asyncio.Event = asyncio.Event()
    outcome: list[tuple[str, float]] = []

    async def wait() -> None:
        try:
            async with clock.timeout(5.0):
                await never.wait()
        except TimeoutError:
            outcome.append(("timeout", clock.now()))

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    await clock.advance(4.9)
    assert outcome == []
    await clock.advance(0.1)
    assert outcome == [("timeout", 5.0)]
    await task


async def test_a_block_that_ends_in_time_leaves_no_timer_and_no_timeout() -> None:
    clock = FakeClock()
    async with clock.timeout(5.0):
        await clock.sleep(0)
    assert clock.next_deadline() is None
    async with clock.timeout_at(None):
        pass


async def test_a_cancel_from_outside_stays_a_cancel_inside_a_timeout() -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def wait() -> None:
        async with clock.timeout(5.0):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(wait())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_call_at_runs_the_callback_once_unless_cancelled() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_at(1.0, lambda: fired.append("kept"))
    clock.call_at(0.5, lambda: fired.append("cancelled")).cancel()
    await clock.advance(2.0)
    assert fired == ["kept"]
    assert clock.next_deadline() is None


async def test_autojump_runs_a_long_wait_at_once_in_deadline_order() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    async with clock.autojump():
        async with clock.timeout(100.0):
            await asyncio.gather(sleeper(32.0), sleeper(0.5), sleeper(4.0))
    assert woke == [0.5, 4.0, 32.0]
    assert clock.now() == 32.0


async def test_autojump_waits_for_running_work_before_jumping() -> None:
    clock = FakeClock()
    ready = asyncio.Event()
    seen: list[float] = []

    async def worker() -> None:
        for _ in range(20):  # busy for many loop rounds at t=0
            await asyncio.sleep(0)
        seen.append(clock.now())
        ready.set()

    async with clock.autojump():
        task = asyncio.create_task(worker())
        async with clock.timeout(10.0):
            await ready.wait()
        await task
    assert seen == [0.0]


async def test_loop_clock_satisfies_the_protocol() -> None:
    clock: Clock = LoopClock()
    async with clock.timeout(10.0):
        await clock.sleep(0)
    with pytest.raises(TimeoutError):
        async with clock.timeout_at(clock.now()):
            await asyncio.Event().wait()



async def test_a_loop_clock_bound_to_its_loop_reads_and_arms_that_loop() -> None:
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop)
    assert loop.time() <= clock.now() <= loop.time()
    fired = asyncio.Event()
    clock.call_at(clock.now(), fired.set)
    await asyncio.wait_for(fired.wait(), 10)
    assert LoopClock().now() <= clock.now()  # the same time as an unbound clock's on this loop
