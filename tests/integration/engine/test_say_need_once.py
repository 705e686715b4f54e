"""Live calls into `ivr serve`: a caller says their need once (or presses a key) and lands right.

Real peers: our SIP/RTP test caller on loopback, Festival or espeak-ng speech, PocketSphinx in
the engine. Each test reads the engine's own record of the call through its HTTP API.
"""

from __future__ import annotations

import pytest

from ivr.testing.caller import AwaitPrompt, DtmfMethod, Keys, Pause, Say, TestCaller
from tests.integration.engine.conftest import RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]


async def test_english_need_after_mandarin_greeting_lands_in_claims(engine: RunningEngine, caller: TestCaller) -> None:
    report = await caller.call(engine.uri, [AwaitPrompt(), Say("I want to file a claim")],
                               from_number="13700000101", linger_s=25.0)
    assert report.answered
    detail = engine.call_detail(report.call_id)
    record = detail["record"]
    assert record["intent"] == "claim"
    assert record["queue"] == "claims"
    assert record["dialect"] == "en", "an English speaker is answered in English"
    assert "claim" in record["transcript"]


@pytest.mark.parametrize("method", [DtmfMethod.RFC4733, DtmfMethod.INFO, DtmfMethod.INBAND], ids=lambda m: m.value)
async def test_zero_reaches_a_human_whatever_the_key_signalling(
    engine: RunningEngine, caller: TestCaller, method: DtmfMethod
) -> None:
    report = await caller.call(engine.uri, [AwaitPrompt(), Keys("0", method)], from_number="13700000102",
                               linger_s=25.0)
    record = engine.call_detail(report.call_id)["record"]
    assert record["queue"] == "general"
    assert "agent" in record["path"]


async def test_speech_barges_in_on_the_open_question(engine: RunningEngine, caller: TestCaller) -> None:
    """Speaking over the open question stops it: the caller hears less of it than a silent caller does."""
    speak_at_s = 11.0  # after the greeting (a plain announcement), a few seconds into the open question
    silent = await caller.call(engine.uri, [Pause(speak_at_s + 8.0)], from_number="13700000103", linger_s=0.0)
    barging = await caller.call(engine.uri, [Pause(speak_at_s), Say("I want to file a claim")],
                                from_number="13700000103", linger_s=4.0)

    def question_end(report_segments: list[tuple[float, float]]) -> float:
        return next(end for start, end in report_segments if start <= speak_at_s + 0.5 <= end + 0.5)

    silent_end = question_end(silent.prompts_heard())
    barging_end = question_end(barging.prompts_heard())
    assert barging_end < speak_at_s + 1.5, barging.prompts_heard()
    assert silent_end > speak_at_s + 5.0, silent.prompts_heard()
    record = engine.call_detail(barging.call_id)["record"]
    assert record["intent"] == "claim"


async def test_silence_gets_the_no_input_prompt_then_the_key_menu(engine: RunningEngine, caller: TestCaller) -> None:
    report = await caller.call(engine.uri, [Pause(40.0)], from_number="13700000104", linger_s=0.0,
                               max_duration_s=50.0)
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_input" in kinds
    assert any(e["kind"] == "prompt_played" and e["data"].get("prompt") == "ask_need_silence"
               for e in detail["journey"]), kinds


async def test_gibberish_is_no_match_and_asked_again(engine: RunningEngine, caller: TestCaller) -> None:
    report = await caller.call(engine.uri, [AwaitPrompt(), Say("purple elephants dance on the moon tonight")],
                               from_number="13700000105", linger_s=6.0)
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_match" in kinds, kinds
