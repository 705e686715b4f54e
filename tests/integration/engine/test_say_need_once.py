"""Live calls into `ivr serve`: a caller says their need once (or presses a key) and lands right.

Real peers: our SIP/RTP test caller on loopback, Festival or espeak-ng speech, PocketSphinx in
the engine. Each test reads the engine's own record of the call through its HTTP API.
"""

from __future__ import annotations

import datetime

import pytest

from ivr.testing.caller import DtmfMethod, Keys, Pause, Say, TestCaller
from tests.integration.engine.agents import call_until
from tests.integration.engine.conftest import RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]

ASK_STARTS_S = 9.5
"""The Mandarin greeting (a plain announcement) lasts about 7.6 s; the open question follows it."""


async def test_english_need_after_mandarin_greeting_lands_in_claims(engine: RunningEngine, caller: TestCaller) -> None:
    # The caller speaks as soon as the open question starts (barge-in), as callers who know what they want do.
    report = await call_until(engine, caller, [Pause(ASK_STARTS_S), Say("I want to file a claim")],
                              from_number="13700000101", event="call_enqueued")
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
    report = await call_until(engine, caller, [Pause(ASK_STARTS_S), Keys("0", method)], from_number="13700000102",
                              event="call_enqueued")
    record = engine.call_detail(report.call_id)["record"]
    assert record["queue"] == "general"
    assert "agent" in record["path"]


async def test_speech_barges_in_on_the_open_question(engine: RunningEngine, caller: TestCaller) -> None:
    """Speaking over the open question stops it: the need is taken long before the prompt would end."""
    speak_at_s = 11.0  # after the greeting (a plain announcement), a few seconds into the open question
    report = await call_until(engine, caller, [Pause(speak_at_s), Say("I want to file a claim")],
                              from_number="13700000103", event="call_enqueued")
    journey = engine.call_detail(report.call_id)["journey"]
    started = _at(journey[0])
    asked = next(e for e in journey if e["kind"] == "prompt_played" and e["data"]["prompt"] == "ask_need")
    heard = next(e for e in journey if e["kind"] == "input")
    prompt_s = engine.prompt_duration_s("ask_need", asked["data"]["dialect"])
    greeting_s = engine.prompt_duration_s("greeting", "cmn")
    assert _at(heard) - started < greeting_s + prompt_s - 3.0, "the prompt was not cut short by the caller"
    assert heard["data"]["speech"] and "claim" in heard["data"]["speech"]


async def test_a_need_said_over_the_welcome_is_heard_at_once(engine: RunningEngine, caller: TestCaller) -> None:
    """Callers who know what they want do not wait for the question: the welcome is its lead-in."""
    report = await call_until(engine, caller, [Pause(2.0), Say("I want to file a claim")],
                              from_number="13700000105", event="call_enqueued")
    detail = engine.call_detail(report.call_id)
    journey = detail["journey"]
    heard = next(e for e in journey if e["kind"] == "input")
    greeting_s = engine.prompt_duration_s("greeting", "cmn")
    assert _at(heard) - _at(journey[0]) < greeting_s, "heard before the welcome would have ended"
    assert (detail["record"]["intent"], detail["record"]["queue"]) == ("claim", "claims")
    played = [e["data"]["prompt"] for e in journey if e["kind"] == "prompt_played"]
    assert played.count("greeting") == 1


def _at(event: dict[str, object]) -> float:
    return datetime.datetime.fromisoformat(str(event["at"])).timestamp()


async def test_silence_gets_the_no_input_prompt_then_the_key_menu(engine: RunningEngine, caller: TestCaller) -> None:
    # The key menu starts once the open question and its no-input prompt have both gone unanswered.
    report = await call_until(engine, caller, [], from_number="13700000104", event="prompt_played",
                              prompt="main_menu")
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_input" in kinds
    assert any(e["kind"] == "prompt_played" and e["data"].get("prompt") == "ask_need_silence"
               for e in detail["journey"]), kinds


async def test_gibberish_is_no_match_and_asked_again(engine: RunningEngine, caller: TestCaller) -> None:
    # Asked again: the retry prompt starts once the engine has judged the words no match.
    report = await call_until(engine, caller, [Pause(ASK_STARTS_S), Say("purple elephants dance on the moon tonight")],
                              from_number="13700000105", event="prompt_played", prompt="ask_need_retry")
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_match" in kinds, kinds
