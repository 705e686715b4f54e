"""Agent controls in the ACD (end wrap-up early, resume after an automatic pause) and each agent's
figures for the day (calls, talk time, pauses), fed by the ACD's own events on a FakeClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.acd import Acd, AcdError, MemoryBackend, run_clock
from ivr.acd.config import AcdConfig
from ivr.acd.events import AcdEvent, AgentChanged
from ivr.acd.figures import TRANSFER_HOLD_REASON, AgentFigures
from ivr.call import QueueRequest
from ivr.clock import FakeClock

from .conftest import agent, agents_yaml, config


async def test_ending_wrap_up_makes_the_agent_available_at_once() -> None:
    clock = FakeClock()
    slow = config(agents_yaml(agent("a1", wrap_up_s=30)), "queues:\n  - {id: general, strategy: longest-idle}\n")
    async with Acd(slow, MemoryBackend(), clock) as acd:
        await acd.controls.login("a1", "sip:a1@x")
        with pytest.raises(AcdError, match="event 'wrap_up_end' is illegal in state 'idle'"):
            await acd.controls.wrap_up_done("a1")
        ticket = await acd.enqueue(QueueRequest("general"), "c1")
        (offer,) = await ticket.wait_for_offer()
        assert await acd.ring_answered(offer)
        await acd.call_ended("a1", "c1")
        assert acd.agent("a1").state.value == "wrap_up"
        await acd.controls.wrap_up_done("a1")
        assert acd.agent("a1").state.value == "idle"
        await acd.enqueue(QueueRequest("general"), "c2")  # offered at once, not after the wrap-up time
        assert acd.agent("a1").state.value == "ringing"
        await run_clock(clock, 60.0, acd)  # the stale wrap-up deadline changes nothing


async def test_an_agent_paused_for_missed_offers_resumes_and_is_offered_again(simple: AcdConfig) -> None:
    clock = FakeClock()
    seen: list[AcdEvent] = []
    async with Acd(simple, MemoryBackend(), clock) as acd:
        acd.add_listener(seen.append)
        await acd.controls.login("a1", "sip:a1@x")
        await acd.enqueue(QueueRequest("general"), "c1")
        await run_clock(clock, 200.0, acd)  # a1 never answers: paused after max_no_answer misses
        assert acd.agent("a1").status.value == "paused" and acd.agent("a1").pause_reason == "no_answer"
        await acd.controls.resume("a1")
        assert acd.agent("a1").consecutive_misses == 0
        assert acd.agent("a1").state.value == "ringing"  # the waiting caller is offered again


def changed(event: str, status: str, state: str, at: float, *, reason: str | None = None,
            day: int = 5) -> AgentChanged:
    wall = datetime(2026, 1, day, 9, 0, tzinfo=UTC) + timedelta(seconds=at)
    return AgentChanged("a1", event, status, state, reason, at, wall, at, at)


def test_figures_count_calls_talk_and_pauses_of_the_day() -> None:
    figures = AgentFigures()
    for event in (
        changed("login", "available", "idle", 0.0),
        changed("offer", "available", "ringing", 10.0),
        changed("answer", "available", "in_call", 12.0),
        changed("hangup_last", "available", "wrap_up", 72.0),
        changed("wrap_up_end", "available", "idle", 80.0),
        changed("pause", "paused", "idle", 100.0, reason="lunch"),
        changed("resume", "available", "idle", 400.0),
        changed("pause", "paused", "idle", 500.0, reason=TRANSFER_HOLD_REASON),  # a transferred call
        changed("resume", "available", "idle", 530.0),
    ):
        figures.apply(event)
    wall = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    assert figures.today("a1", wall, 600.0) == {"day": "2026-01-05", "calls": 2, "talk_s": 90.0, "pauses": 1,
                                                "paused_s": 300.0}
    assert figures.today("a2", wall, 600.0)["calls"] == 0


def test_a_pause_still_going_counts_up_to_now_and_a_new_day_starts_over() -> None:
    figures = AgentFigures()
    figures.apply(changed("pause", "paused", "idle", 100.0, reason="break"))
    wall = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    assert figures.today("a1", wall, 160.0)["paused_s"] == 60.0
    figures.apply(changed("resume", "available", "idle", 200.0, day=6))
    tomorrow = figures.today("a1", datetime(2026, 1, 6, 18, 0, tzinfo=UTC), 300.0)
    assert tomorrow["pauses"] == 0 and tomorrow["paused_s"] == 0.0
