"""The simulated caller's ear: when the far end has talked and fallen silent, on a driven clock."""

from __future__ import annotations

import asyncio

import numpy as np

from ivr.clock import FakeClock
from ivr.testing.caller import _Ear

LOUD = np.full(160, 8000, dtype=np.int16)
QUIET = np.zeros(160, dtype=np.int16)


async def hear(clock: FakeClock, ear: _Ear, frames: list[np.ndarray], waiting: asyncio.Future[bool]) -> float | None:
    """Deliver one frame every 20 ms of clock time; the clock time at which `waiting` finished (None if not)."""
    for frame in frames:
        await clock.advance(0.02)
        ear(frame)
        await asyncio.sleep(0)
        if waiting.done():
            return clock.now()
    return None


async def test_until_quiet_returns_once_the_far_end_has_talked_and_then_been_quiet_long_enough() -> None:
    clock = FakeClock()
    ear = _Ear(clock, record=False)
    waiting = asyncio.ensure_future(ear.until_quiet(0.0, timeout_s=10.0, quiet_s=0.8))
    # 1 s of silence, 1 s of prompt with a 0.5 s pause in the middle, then silence.
    frames = [QUIET] * 50 + [LOUD] * 20 + [QUIET] * 25 + [LOUD] * 25 + [QUIET] * 100
    done_at = await hear(clock, ear, frames, waiting)
    assert waiting.result() is True
    assert done_at is not None and abs(done_at - (2.4 + 0.8)) < 0.03  # last loud frame at 2.4 s, then 0.8 s
    assert ear.frames == []  # not recording


async def test_until_quiet_ignores_sound_before_it_started_and_times_out_without_new_sound() -> None:
    clock = FakeClock()
    ear = _Ear(clock)
    ear(LOUD)  # heard at t=0, before the wait's `after`
    await clock.advance(1.0)
    waiting = asyncio.ensure_future(ear.until_quiet(0.5, timeout_s=2.0, quiet_s=0.8))
    done_at = await hear(clock, ear, [QUIET] * 150, waiting)
    assert waiting.result() is False
    assert done_at is not None and abs(done_at - 3.0) < 0.03
    assert len(ear.frames) > 100  # recording: every frame heard until the wait ended


async def test_a_recording_ear_keeps_every_frame_in_order() -> None:
    clock = FakeClock()
    ear = _Ear(clock, record=True)
    for value in range(5):
        ear(np.full(160, value, dtype=np.int16))
    assert ear.audio().tolist() == [v for v in range(5) for _ in range(160)]
