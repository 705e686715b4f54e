"""Live calls into `ivr serve` with each English engine: a caller says their need once and lands in its queue.

Whisper (`asr_engine: whisper`, the default, with PocketSphinx for a re-ask's answers) and PocketSphinx
(`asr_engine: pocketsphinx`), each in its own engine:
our SIP test caller says "I want to file a claim" (Festival) after the Mandarin greeting, the engine's decoder
processes hear it with that engine, and the record shows the claims queue.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.testing.caller import Pause, Say, TestCaller
from tests.integration.engine.agents import call_until, log_events
from tests.integration.engine.conftest import RunningEngine, needs_tts, start_engine, stop_engine

pytestmark = [pytest.mark.integration, needs_tts]

ASK_STARTS_S = 9.5
"""The Mandarin greeting lasts about 7.6 s; the open question follows it (as in test_say_need_once)."""
CLAIM = "I want to file a claim"


@pytest.fixture(scope="module", params=["whisper", "pocketsphinx"])
def english_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path_factory.mktemp(request.param), "--set", f"asr_engine={request.param}")
    try:
        yield running
    finally:
        stop_engine(running)


async def test_a_spoken_need_is_routed_by_the_configured_english_engine(
    english_engine: RunningEngine, caller: TestCaller, request: pytest.FixtureRequest
) -> None:
    engine_name = request.node.callspec.params["english_engine"]
    loaded = log_events(english_engine, "speech_models_loaded")  # one per worker process
    assert loaded and {entry["engines"]["en"] for entry in loaded} == {engine_name}
    report = await call_until(english_engine, caller, [Pause(ASK_STARTS_S), Say(CLAIM)],
                              from_number="13700000401", event="call_enqueued")
    record = english_engine.call_detail(report.call_id)["record"]
    assert (record["dialect"], record["intent"], record["queue"]) == ("en", "claim", "claims"), record
    assert "claim" in record["transcript"]
