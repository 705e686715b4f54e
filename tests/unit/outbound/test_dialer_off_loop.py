"""The dialer's campaign-state queries run off the event loop (issue 22): a shared campaign state whose
database does not answer holds the dialer, never the loop that paces every call's media."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ivr.clock import FakeClock
from ivr.engine.outbound import SHARED_POLL_S, OutboundCalls
from ivr.outbound.scheduler import Scheduler

WAIT_S = 10.0


class SilentState:
    """A shared campaign state whose `lead()` waits until `release` is set (a database gone silent)."""

    shared = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.leads = 0

    def paused(self) -> list[str]:
        return []

    def targets(self, campaign: str | None = None, *, after_seq: int = 0) -> list[Any]:
        return []

    def lead(self) -> bool:
        self.leads += 1
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the state"
        return False


def dialer(state: SilentState, clock: FakeClock) -> OutboundCalls:
    scheduler = Scheduler(state)
    return OutboundCalls(scheduler=scheduler, legs=None, flows=lambda flow_id: None, interpreter=None,
                         ears=lambda: None, queues=None, events=None, flow_variables={}, clock=clock)


async def test_a_silent_campaign_database_holds_the_dialer_not_the_loop() -> None:
    clock, state = FakeClock(), SilentState()
    stop = asyncio.Event()
    running = asyncio.create_task(dialer(state, clock).run(stop))
    ticks: list[float] = []

    async def ticking() -> None:
        while True:
            await clock.sleep(0.02)
            ticks.append(clock.now())

    ticker = asyncio.create_task(ticking())
    await asyncio.sleep(0)
    assert await asyncio.to_thread(state.entered.wait, WAIT_S)  # lead() is running, held by the database
    await clock.advance(0.201)
    assert len(ticks) == 10 and not running.done()  # the loop went on while the query hung
    state.release.set()
    stop.set()
    while not running.done():  # the dialer finishes its step, then waits out its poll and sees `stop`
        await clock.advance(SHARED_POLL_S)
        await asyncio.sleep(0)
    ticker.cancel()
    await running
    assert state.leads == 1


class OwnState(SilentState):
    """A campaign state of the engine's own (not shared): the dialer always leads."""

    shared = False


async def test_a_wake_up_while_the_dialer_queries_is_not_lost() -> None:
    clock = FakeClock()
    calls = dialer(OwnState(), clock)
    asked: list[threading.Event] = [threading.Event(), threading.Event()]
    release = threading.Event()

    def next_wakeup(wall: object, mono: float) -> float | None:
        asked[0 if not asked[0].is_set() else 1].set()
        assert release.wait(WAIT_S)
        return None  # idle: the dialer would sleep 60 s unless woken

    calls.scheduler.next_wakeup = next_wakeup  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(calls.run(stop))
    assert await asyncio.to_thread(asked[0].wait, WAIT_S)  # deciding, off the loop
    calls.wake()  # targets added through the API meanwhile
    release.set()
    assert await asyncio.to_thread(asked[1].wait, WAIT_S)  # decided again at once, no clock moved
    assert clock.now() == 0.0
    stop.set()
    calls.wake()
    await running
