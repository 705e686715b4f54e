"""A live call into `ivr serve` with Whisper for English and PocketSphinx as its answers engine (the hybrid).

`asr_models: {en: {engine: whisper, answers: pocketsphinx}}`: the open question is heard by Whisper; after a
no-match, the re-ask's one-word answer (a closed turn: `ListenSpec.closed`) by PocketSphinx searching only the
answers, in the same decoder processes. The caller is the re-ask caller of test_say_need_once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ivr.testing.caller import TestCaller
from ivr.testing.voices import speak
from tests.integration.engine.agents import call_until, log_events
from tests.integration.engine.conftest import RunningEngine, needs_tts, start_engine, stop_engine
from tests.integration.engine.test_say_need_once import ANSWER, OFF_TOPIC, SCRIPTS

pytestmark = [pytest.mark.integration, needs_tts]

HYBRID = "asr_models={en: {engine: whisper, answers: pocketsphinx}}"


@pytest.fixture(scope="module")
def hybrid_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path_factory.mktemp("hybrid"), "--set", HYBRID)
    try:
        yield running
    finally:
        stop_engine(running)


async def test_the_reask_answer_is_heard_by_the_answers_engine_and_routed(
    hybrid_engine: RunningEngine, caller: TestCaller
) -> None:
    for text in (OFF_TOPIC, ANSWER):  # rendered before the call: a render blocks the caller's loop
        await asyncio.to_thread(speak, text)
    script = SCRIPTS["reask_payment"]
    report = await call_until(hybrid_engine, caller, script.steps, from_number="13700000402", event=script.event,
                              **script.match)
    detail = hybrid_engine.call_detail(report.call_id)
    intents = [e["data"] for e in detail["journey"] if e["kind"] == "intent"]
    assert intents[-1]["intent"] == "payment" and intents[-1]["source"] == "answer", intents
    heard_by = [entry["engines"] for entry in log_events(hybrid_engine, "speech_started", call_id=report.call_id)]
    assert heard_by[0] == ["whisper"] and heard_by[-1] == ["pocketsphinx"], heard_by
    loaded = log_events(hybrid_engine, "speech_models_loaded")  # one per worker process
    assert loaded and all(e["engines"]["en"] == "whisper" and e["answers"] == {"en": "pocketsphinx"} for e in loaded)
