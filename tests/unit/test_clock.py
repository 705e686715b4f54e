from __future__ import annotations

import asyncio

from ivr.clock import FakeClock


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
