"""The callback-number dialogue over the wire (issue 15): a real SIP caller (our test caller, RTP and
RFC 4733 keys) queued at `ivr serve` presses 1, hears the read-back, keys another number, confirms.

The callers' From numbers are ones the callback rules refuse (international), so the engine must not
read them back or dial them: it asks for a number instead. No agent is logged in, so the callers wait.
Both callers phone one engine at once, each judged by its own call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from ivr.testing.caller import Keys, Pause, Step, TestCaller
from tests.integration.engine.agents import (
    AgentSpec,
    log_events,
    running_engine,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import RunningEngine, needs_tts
from tests.integration.engine.hours import NIGHT_NOTICE_S, night_now

pytestmark = [pytest.mark.integration, needs_tts]

REFUSED_FROM = "0019005550100"
"""An international premium-rate number in From: what a toll fraudster would put there."""
REFUSED_FROM_TOO = "0019005550101"
"""The second caller's, refused alike."""
KEYED = "13700000505"
REFUSED_KEYED = "0088216000001"


def to_the_queue() -> list[Step]:
    """Key 0 during the greeting takes the caller to `general` once the transfer prompt has played (about
    5 s; at night the night notice comes first; a key before the caller is queued is the flow's, not the
    queue's, so the pause is generous)."""
    return [Pause(1.0), Keys("0"), Pause(10.0 + (NIGHT_NOTICE_S if night_now() else 0.0))]

ON_HOLD_AFTER_S = 3.0
"""How long the refused caller stays on hold after the explanation before hanging up."""


def callback_prompts(engine: RunningEngine, call_id: str) -> list[str]:
    return [entry["prompt"] for entry in log_events(engine, "prompt_played")
            if entry.get("call_id") == call_id and str(entry["prompt"]).startswith("callback_")]


@dataclass
class Dialogues:
    engine: RunningEngine
    confirmed_call: str
    """The caller who keys a number the rules allow and confirms it (the engine says goodbye)."""
    refused_call: str
    """The caller who keys a number the rules refuse, hears why, and stays queued until hanging up."""
    records: dict[str, dict[str, Any]]


async def confirm_a_number(engine: RunningEngine) -> str:
    steps: list[Step] = [*to_the_queue(), Keys("1"), Pause(3.0), Keys(KEYED + "#"), Pause(4.0), Keys("1"),
                         *[Pause(1.0)] * 60]
    caller = await TestCaller.open(rtp_ports=(43700, 43798))
    try:
        report = await caller.call(engine.uri, steps, from_number=REFUSED_FROM, linger_s=10.0, max_duration_s=100.0)
    finally:
        await caller.close()
    return report.call_id


async def key_a_refused_number(engine: RunningEngine) -> str:
    """Hang up once the refusal has been explained and the caller has waited on, still queued, a little."""
    steps: list[Step] = [*to_the_queue(), Keys("1"), Pause(3.0), Keys(REFUSED_KEYED + "#"), *[Pause(1.0)] * 60]
    caller = await TestCaller.open(rtp_ports=(43800, 43898))
    try:
        call = asyncio.create_task(caller.call(engine.uri, steps, from_number=REFUSED_FROM_TOO, linger_s=0.0,
                                               max_duration_s=100.0))
        try:
            invite = (await wait_for_log(engine, "invite_received", 30.0, caller=REFUSED_FROM_TOO))[0]
            explained = await wait_for_log(engine, "prompt_played", 60.0, call_id=invite["call_id"],
                                           prompt="callback_unavailable")
            await asyncio.sleep(float(explained[0]["duration_s"]) + ON_HOLD_AFTER_S)  # the words, then hold
            for leg in list(caller.ua.legs):
                if leg.call_id == invite["call_id"]:
                    await leg.bye()
            report = await asyncio.wait_for(call, 15)
        finally:
            call.cancel()
    finally:
        await caller.close()
    return report.call_id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dialogues(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dialogues]:
    tmp = tmp_path_factory.mktemp("callback")
    config = write_engine_config(tmp, [AgentSpec("a1", {"general": 2})])
    async with running_engine(tmp / "engine", config) as engine:
        confirmed_call, refused_call = await asyncio.gather(confirm_a_number(engine), key_a_refused_number(engine))
        await wait_for_log(engine, "callback_registered", 10.0, call_id=confirmed_call)
        records = {call_id: (await asyncio.to_thread(engine.call_detail, call_id))["record"]
                   for call_id in (confirmed_call, refused_call)}
        yield Dialogues(engine, confirmed_call, refused_call, records)


def test_a_keyed_number_is_read_back_confirmed_and_taken(dialogues: Dialogues) -> None:
    engine, call_id = dialogues.engine, dialogues.confirmed_call
    confirmed = log_events(engine, "callback_number_confirmed", call_id=call_id)
    registered = log_events(engine, "callback_registered", call_id=call_id)
    assert len(confirmed) == 1 and confirmed[0]["number"] == KEYED and confirmed[0]["keyed"] is True
    assert registered[0]["queue"] == "general"
    assert callback_prompts(engine, call_id) == ["callback_enter_number", "callback_confirm", "callback_saved"]
    assert dialogues.records[call_id]["outcome"] == "callback"


def test_a_keyed_number_the_rules_refuse_is_explained_and_the_caller_stays_queued(dialogues: Dialogues) -> None:
    engine, call_id = dialogues.engine, dialogues.refused_call
    refused = log_events(engine, "callback_refused", call_id=call_id)
    assert [entry["verdict"] for entry in refused] == ["not_allowed"]
    assert callback_prompts(engine, call_id) == ["callback_enter_number", "callback_unavailable"]
    assert not log_events(engine, "callback_registered", call_id=call_id)
    assert not log_events(engine, "callback_number_confirmed", call_id=call_id)
    assert dialogues.records[call_id]["outcome"] != "callback"
    assert log_events(engine, "caller_withdrawn", call_id=call_id), "the caller hung up while still queued"
