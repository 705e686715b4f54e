"""The callback-number dialogue of a queued caller (issue 15) on a FakeClock: a real ACD, fake legs.

After key 1 the caller hears the number read back and confirms it (1) or keys another (2); a number the
rules refuse or today's limits exclude is explained (`callback_unavailable`) and the caller keeps their place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from engine_fakes import FakeDialer, FakeLeg, one_agent_acd_config
from test_handoff import Rig, agent_on_break, request

from ivr.acd import Acd, MemoryBackend
from ivr.call import CallEnded, QueueOutcomeKind, QueueResult
from ivr.callback_policy import CallbackPolicy, CallbackRules
from ivr.clock import FakeClock
from ivr.engine.callback import CONFIRM_TIMEOUT_S, FIRST_KEY_TIMEOUT_S, MAX_NUMBER_DIGITS
from ivr.engine.events import CallEvent, CallEvents
from ivr.engine.handoff import QueueHandoff

OWN = "13800138000"
OTHER = "13912345678"


@pytest.fixture
def policy() -> CallbackPolicy:
    return CallbackPolicy(CallbackRules(per_number_per_day=1, per_day=5))


@pytest.fixture
async def rig(policy: CallbackPolicy) -> AsyncIterator[Rig]:
    clock = FakeClock()
    events: list[CallEvent] = []
    dialer = FakeDialer(clock)
    async with Acd(one_agent_acd_config(), MemoryBackend(), clock) as acd, clock.autojump():
        handoff = QueueHandoff(acd, dialer, CallEvents([events.append]), clock, lambda n: f"sip:{n}@x", policy)
        yield Rig(clock, acd, dialer, events, handoff)


async def queued(rig: Rig, call_id: str = "c1", caller: str = OWN) -> tuple[FakeLeg, asyncio.Task[QueueResult]]:
    leg = FakeLeg(call_id, rig.clock)
    serving = asyncio.create_task(rig.handoff.serve(leg, request(), caller=caller))
    await rig.clock.sleep(1.0)
    return leg, serving


async def callback_asked(
    rig: Rig, first_prompt: str, caller: str = OWN
) -> tuple[FakeLeg, asyncio.Task[QueueResult]]:
    """A caller queued (no agent free) who pressed 1 and has heard the dialogue's first prompt."""
    await agent_on_break(rig)
    leg, serving = await queued(rig, caller=caller)
    leg.press("1")
    await heard(rig, leg, first_prompt)
    return leg, serving


async def heard(rig: Rig, leg: FakeLeg, prompt_id: str, times: int = 1) -> None:
    """Wait until `prompt_id` has been played `times` times and has finished playing."""
    while leg.played.count(prompt_id) < times:
        await rig.clock.sleep(0.5)
    await rig.clock.sleep(2.5)


async def another_number_asked(rig: Rig, leg: FakeLeg) -> None:
    """Key 1 (callback), hear the read-back, key 2 (another number), hear "key the number"."""
    leg.press("1")
    await heard(rig, leg, "callback_confirm")
    leg.press("2")
    await heard(rig, leg, "callback_enter_number")


def keys(leg: FakeLeg, digits: str) -> None:
    for digit in digits:
        leg.press(digit)


async def still_queued(rig: Rig, leg: FakeLeg, serving: asyncio.Task[QueueResult]) -> None:
    """The caller is back on music on hold, in the queue, until they hang up."""
    await rig.clock.sleep(5.0)
    assert not serving.done() and leg.held
    leg.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving


async def test_the_caller_confirms_the_number_read_back_and_the_callback_is_left(
    rig: Rig, policy: CallbackPolicy
) -> None:
    leg, serving = await callback_asked(rig, "callback_confirm", caller="+86 138 0013 8000")
    leg.press("1")
    result = await serving
    assert result.kind is QueueOutcomeKind.CALLBACK and result.callback_number == OWN
    assert leg.played == ["callback_confirm", "callback_saved"]
    assert policy.check(OWN, rig.clock.wall().date()).value == "number_limit"  # counted once taken


async def test_the_read_back_is_the_number_grouped_for_digit_by_digit_speech(rig: Rig) -> None:
    await agent_on_break(rig)
    spoken: list[dict[str, str]] = []
    leg, serving = await queued(rig)
    play = leg.play

    async def recording_play(prompts, *, barge_in=False):  # type: ignore[no-untyped-def]
        spoken.extend(dict(p.variables) for p in prompts)
        return await play(prompts, barge_in=barge_in)

    leg.play = recording_play  # type: ignore[method-assign]
    leg.press("1")
    await heard(rig, leg, "callback_confirm")
    leg.press("1")
    await serving
    assert spoken[0] == {"phone": "138 0013 8000"}  # {phone}: digits, read per the dialect's numerals


async def test_2_lets_the_caller_key_another_number_which_is_read_back_in_turn(rig: Rig) -> None:
    await agent_on_break(rig)
    leg, serving = await queued(rig)
    await another_number_asked(rig, leg)
    keys(leg, OTHER + "#")
    await heard(rig, leg, "callback_confirm", times=2)
    leg.press("1")
    result = await serving
    assert result.callback_number == OTHER
    assert leg.played == ["callback_confirm", "callback_enter_number", "callback_confirm", "callback_saved"]


async def test_a_keyed_number_the_rules_refuse_is_explained_and_the_caller_keeps_their_place(rig: Rig) -> None:
    await agent_on_break(rig)
    first, serving = await queued(rig, "c1")
    second, serving_second = await queued(rig, "c2")
    await another_number_asked(rig, first)
    keys(first, "0090012345678#")  # international: toll fraud's favourite
    await heard(rig, first, "callback_unavailable")
    assert first.played == ["callback_confirm", "callback_enter_number", "callback_unavailable"]
    assert not serving.done() and first.held
    await rig.acd.controls.resume("a1")
    while not rig.dialer.dialled:
        await rig.clock.sleep(0.5)
    assert rig.dialer.dialled[0].headers["X-IVR-Call-ID"] == "c1"  # still ahead of c2
    for leg, task in ((first, serving), (second, serving_second)):
        leg.hang_up_by_party()
        with pytest.raises(CallEnded):
            await task


async def test_a_presented_number_the_rules_refuse_is_not_read_back_the_caller_keys_one(rig: Rig) -> None:
    leg, serving = await callback_asked(rig, "callback_enter_number", caller="+1 900 555 0100")
    keys(leg, OTHER + "#")
    await heard(rig, leg, "callback_confirm")
    leg.press("1")
    result = await serving
    assert result.callback_number == OTHER
    assert leg.played == ["callback_enter_number", "callback_confirm", "callback_saved"]


async def test_a_keyed_number_over_its_daily_limit_is_explained_and_the_caller_stays(
    rig: Rig, policy: CallbackPolicy
) -> None:
    policy.record(OTHER, rig.clock.wall().date())  # already called back once today (limit 1)
    await agent_on_break(rig)
    leg, serving = await queued(rig)
    await another_number_asked(rig, leg)
    keys(leg, OTHER + "#")
    await heard(rig, leg, "callback_unavailable")
    assert leg.played == ["callback_confirm", "callback_enter_number", "callback_unavailable"]
    await still_queued(rig, leg, serving)


async def test_when_todays_callbacks_are_used_up_the_caller_is_told_at_once(rig: Rig, policy: CallbackPolicy) -> None:
    day = rig.clock.wall().date()
    for n in range(5):
        policy.record(f"1390000000{n}", day)
    leg, serving = await callback_asked(rig, "callback_unavailable")
    assert leg.played == ["callback_unavailable"]
    await still_queued(rig, leg, serving)


async def test_no_answer_to_the_read_back_leaves_the_caller_queued(rig: Rig) -> None:
    leg, serving = await callback_asked(rig, "callback_confirm")
    await rig.clock.sleep(CONFIRM_TIMEOUT_S)
    assert leg.played == ["callback_confirm"]
    await still_queued(rig, leg, serving)


async def test_no_number_keyed_leaves_the_caller_queued(rig: Rig) -> None:
    await agent_on_break(rig)
    leg, serving = await queued(rig)
    await another_number_asked(rig, leg)
    await rig.clock.sleep(FIRST_KEY_TIMEOUT_S)
    assert leg.played == ["callback_confirm", "callback_enter_number"]
    await still_queued(rig, leg, serving)


async def test_a_keyed_number_ends_at_a_pause_without_the_hash_key(rig: Rig) -> None:
    leg, serving = await callback_asked(rig, "callback_enter_number", caller="anonymous")
    keys(leg, OTHER)
    await heard(rig, leg, "callback_confirm")
    leg.press("1")
    assert (await serving).callback_number == OTHER


async def test_a_keyed_number_is_bounded_in_length(rig: Rig) -> None:
    leg, serving = await callback_asked(rig, "callback_enter_number", caller="anonymous")
    keys(leg, "1" * (MAX_NUMBER_DIGITS + 5))  # the 16th key ends the entry; no allowed number is that long
    await heard(rig, leg, "callback_unavailable")
    assert leg.played == ["callback_enter_number", "callback_unavailable"]
    await still_queued(rig, leg, serving)


async def test_an_unclear_key_after_the_read_back_leaves_the_caller_queued(rig: Rig) -> None:
    leg, serving = await callback_asked(rig, "callback_confirm")
    leg.press("7")
    await rig.clock.sleep(1.0)
    assert leg.played == ["callback_confirm"] and leg.held
    await still_queued(rig, leg, serving)


async def test_a_caller_who_hangs_up_during_the_dialogue_is_withdrawn(rig: Rig) -> None:
    await agent_on_break(rig)
    leg, serving = await queued(rig)
    await another_number_asked(rig, leg)
    keys(leg, "139")
    leg.hang_up_by_party()
    with pytest.raises(CallEnded):
        await serving
    await rig.acd.controls.resume("a1")
    await rig.clock.sleep(30.0)
    assert rig.dialer.dialled == []


async def test_a_presented_number_called_back_enough_today_is_not_offered_another_is_asked(
    rig: Rig, policy: CallbackPolicy
) -> None:
    policy.record(OWN, rig.clock.wall().date())
    leg, serving = await callback_asked(rig, "callback_enter_number")
    keys(leg, OTHER + "#")
    await heard(rig, leg, "callback_confirm")
    leg.press("1")
    assert (await serving).callback_number == OTHER
    assert leg.played == ["callback_enter_number", "callback_confirm", "callback_saved"]
