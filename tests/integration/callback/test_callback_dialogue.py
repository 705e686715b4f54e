"""The callback-number dialogue over the wire (issue 15): a real SIP caller (our test caller, RTP and
RFC 4733 keys) queued at `ivr serve` presses 1, hears the read-back, keys another number, confirms.

The callers' From numbers are ones the callback rules refuse (international), so the engine must not
read them back or dial them: it asks for a number instead. No agent is logged in, so the caller waits.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from ivr.testing.caller import Keys, Pause, Step, TestCaller
from tests.integration.engine.agents import (
    AgentSpec,
    log_events,
    running_engine,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]

REFUSED_FROM = "0019005550100"
"""An international premium-rate number in From: what a toll fraudster would put there."""
KEYED = "13700000505"
TO_THE_QUEUE: list[Step] = [Pause(1.0), Keys("0"), Pause(10.0)]
"""Key 0 during the greeting takes the caller to `general` once the transfer prompt has played (about
5 s; a key before the caller is queued is the flow's, not the queue's, so the pause is generous)."""


def callback_prompts(engine: RunningEngine, call_id: str) -> list[str]:
    return [entry["prompt"] for entry in log_events(engine, "prompt_played")
            if entry.get("call_id") == call_id and str(entry["prompt"]).startswith("callback_")]


async def place_call(engine_uri: str, steps: list[Step], rtp_base: int) -> str:
    caller = await TestCaller.open(rtp_ports=(rtp_base, rtp_base + 98))
    try:
        report = await caller.call(engine_uri, steps, from_number=REFUSED_FROM, linger_s=10.0,
                                   max_duration_s=100.0)
    finally:
        await caller.close()
    return report.call_id


async def test_a_keyed_number_is_read_back_confirmed_and_taken(tmp_path: pathlib.Path) -> None:
    config = write_engine_config(tmp_path, [AgentSpec("a1", {"general": 2})])
    async with running_engine(tmp_path / "engine", config) as engine:
        steps: list[Step] = [*TO_THE_QUEUE, Keys("1"), Pause(3.0), Keys(KEYED + "#"), Pause(4.0), Keys("1"),
                             *[Pause(1.0)] * 60]
        call_id = await place_call(engine.uri, steps, 43700)
        confirmed = (await wait_for_log(engine, "callback_number_confirmed", 10.0))[0]
        registered = await wait_for_log(engine, "callback_registered", 10.0)
        record = (await asyncio.to_thread(engine.call_detail, call_id))["record"]
    assert confirmed["number"] == KEYED and confirmed["keyed"] is True
    assert registered[0]["queue"] == "general"
    assert callback_prompts(engine, call_id) == ["callback_enter_number", "callback_confirm", "callback_saved"]
    assert record["outcome"] == "callback"


async def test_a_keyed_number_the_rules_refuse_is_explained_and_the_caller_stays_queued(
    tmp_path: pathlib.Path,
) -> None:
    config = write_engine_config(tmp_path, [AgentSpec("a1", {"general": 2})])
    async with running_engine(tmp_path / "engine", config) as engine:
        steps: list[Step] = [*TO_THE_QUEUE, Keys("1"), Pause(3.0), Keys("0088216000001#"), *[Pause(1.0)] * 30]
        call_id = await place_call(engine.uri, steps, 43800)
        refused = await wait_for_log(engine, "callback_refused", 10.0)
        record = (await asyncio.to_thread(engine.call_detail, call_id))["record"]
    assert refused[0]["verdict"] == "not_allowed"
    assert callback_prompts(engine, call_id) == ["callback_enter_number", "callback_unavailable"]
    assert not log_events(engine, "callback_registered")
    assert record["outcome"] != "callback"  # the caller hung up while still queued
