"""Live calls into `ivr serve`: a caller says their need once (or presses a key) and lands right.

Real peers: our SIP/RTP test caller on loopback, Festival or espeak-ng speech, the engine's default
English recognizer (Whisper, with PocketSphinx for a re-ask's answers). Each test reads the engine's own record
of the call through its HTTP API.

The module's callers phone the engine at once, as a hotline's callers do (each from their own
number), and each test judges its own call: the module takes as long as its longest call (the
silent caller's, ~45 s), not the sum of them all.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from ivr.testing.caller import AwaitPrompt, CallReport, DtmfMethod, Keys, Pause, Say, Step, TestCaller
from ivr.testing.voices import speak
from tests.integration.engine.agents import call_until
from tests.integration.engine.conftest import RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]

ASK_STARTS_S = 9.5
"""The Mandarin greeting (a plain announcement) lasts about 7.6 s; the open question follows it."""
CLAIM = "I want to file a claim"
GIBBERISH = "purple elephants dance on the moon tonight"
OFF_TOPIC = "hello hello"
"""Heard as said, and no need at all (every intent far under the confirm threshold): asked again, never confirmed."""
ANSWER = "payment"
SPEAK_AT_S = 11.0
"""The barge-in caller speaks after the greeting (a plain announcement), a few seconds into the open question."""


@dataclass(frozen=True)
class Script:
    """One caller: what they do, from which number, and the engine state their call lasts until
    (`call_until`: the caller hangs up once the engine has logged `event` with `match` for the call)."""

    steps: Sequence[Step]
    from_number: str
    event: str
    match: dict[str, object] = field(default_factory=dict)


SCRIPTS = {
    # The caller speaks as soon as the open question starts (barge-in), as callers who know what they want do.
    "english_need": Script([Pause(ASK_STARTS_S), Say(CLAIM)], "13700000101", "call_enqueued"),
    **{f"zero_{method.value}": Script([Pause(ASK_STARTS_S), Keys("0", method)], number, "call_enqueued")
       for method, number in zip(DtmfMethod, ("13700000102", "13700000106", "13700000107"), strict=True)},
    "barge_in": Script([Pause(SPEAK_AT_S), Say(CLAIM)], "13700000103", "call_enqueued"),
    "over_the_welcome": Script([Pause(2.0), Say(CLAIM)], "13700000105", "call_enqueued"),
    # The key menu starts once the open question and its no-input prompt have both gone unanswered.
    "silence": Script([], "13700000104", "prompt_played", {"prompt": "main_menu"}),
    # Asked again: the retry prompt starts once the engine has judged the words no match.
    "gibberish": Script([Pause(ASK_STARTS_S), Say(GIBBERISH)], "13700000108", "prompt_played",
                        {"prompt": "ask_need_retry"}),
    # Not understood, then the one word the retry prompt names: the retry listens for those words.
    "reask_payment": Script([Pause(ASK_STARTS_S), Say(OFF_TOPIC), AwaitPrompt(), Say(ANSWER)], "13700000109",
                            "prompt_played", {"prompt": "payment_info"}),
}


Calls = dict[str, CallReport | BaseException]
"""Each script's report, by name (or the error its call ended in)."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calls(engine: RunningEngine) -> AsyncIterator[Calls]:
    """Every script's call, placed at once through one test caller; a call that failed holds its error,
    raised by its own test (`placed`), so one caller's failure is not every test's."""
    for text in (CLAIM, GIBBERISH, OFF_TOPIC, ANSWER):  # rendered before the calls: a render blocks the caller's loop
        await asyncio.to_thread(speak, text)
    base = 42000 + (os.getpid() % 50) * 100  # keep parallel test runs off each other's RTP ports
    caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        results = await asyncio.gather(
            *(call_until(engine, caller, script.steps, from_number=script.from_number, event=script.event,
                         **script.match) for script in SCRIPTS.values()),
            return_exceptions=True,
        )
    finally:
        await caller.close()
    yield dict(zip(SCRIPTS, results, strict=True))


def placed(calls: Calls, name: str) -> CallReport:
    result = calls[name]
    if isinstance(result, BaseException):
        raise result
    return result


def test_english_need_after_mandarin_greeting_lands_in_claims(engine: RunningEngine, calls: Calls) -> None:
    report = placed(calls, "english_need")
    assert report.answered
    detail = engine.call_detail(report.call_id)
    record = detail["record"]
    assert record["intent"] == "claim"
    assert record["queue"] == "claims"
    assert record["dialect"] == "en", "an English speaker is answered in English"
    assert "claim" in record["transcript"]


@pytest.mark.parametrize("method", [DtmfMethod.RFC4733, DtmfMethod.INFO, DtmfMethod.INBAND], ids=lambda m: m.value)
def test_zero_reaches_a_human_whatever_the_key_signalling(
    engine: RunningEngine, calls: Calls, method: DtmfMethod
) -> None:
    report = placed(calls, f"zero_{method.value}")
    record = engine.call_detail(report.call_id)["record"]
    assert record["queue"] == "general"
    assert "agent" in record["path"]


def test_speech_barges_in_on_the_open_question(engine: RunningEngine, calls: Calls) -> None:
    """Speaking over the open question stops it: the need is taken long before the prompt would end."""
    report = placed(calls, "barge_in")
    journey = engine.call_detail(report.call_id)["journey"]
    started = _at(journey[0])
    asked = next(e for e in journey if e["kind"] == "prompt_played" and e["data"]["prompt"] == "ask_need")
    heard = next(e for e in journey if e["kind"] == "input")
    prompt_s = engine.prompt_duration_s("ask_need", asked["data"]["dialect"])
    greeting_s = engine.prompt_duration_s("greeting", "cmn")
    assert _at(heard) - started < greeting_s + prompt_s - 3.0, "the prompt was not cut short by the caller"
    assert heard["data"]["speech"] and "claim" in heard["data"]["speech"]


def test_a_need_said_over_the_welcome_is_heard_at_once(engine: RunningEngine, calls: Calls) -> None:
    """Callers who know what they want do not wait for the question: the welcome is its lead-in."""
    report = placed(calls, "over_the_welcome")
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


def test_silence_gets_the_no_input_prompt_then_the_key_menu(engine: RunningEngine, calls: Calls) -> None:
    report = placed(calls, "silence")
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_input" in kinds
    assert any(e["kind"] == "prompt_played" and e["data"].get("prompt") == "ask_need_silence"
               for e in detail["journey"]), kinds


def test_gibberish_is_no_match_and_asked_again(engine: RunningEngine, calls: Calls) -> None:
    report = placed(calls, "gibberish")
    detail = engine.call_detail(report.call_id)
    kinds = [event["kind"] for event in detail["journey"]]
    assert "no_match" in kinds, kinds


def test_not_understood_then_the_word_the_retry_names_is_routed(engine: RunningEngine, calls: Calls) -> None:
    """Words off the point, the retry prompt ("Just say claim, policy details, payment, ..."), then one
    word: the retry turn listens for the words it named, and the caller reaches the payment node."""
    report = placed(calls, "reask_payment")
    detail = engine.call_detail(report.call_id)
    journey = detail["journey"]
    kinds = [e["kind"] for e in journey]
    assert "no_match" in kinds, kinds
    played = [e["data"]["prompt"] for e in journey if e["kind"] == "prompt_played"]
    assert "ask_need_retry" in played, played
    intents = [e["data"] for e in journey if e["kind"] == "intent"]
    assert intents[-1]["intent"] == "payment" and intents[-1]["source"] == "answer", intents
    record = detail["record"]
    assert record["intent"] == "payment" and "payment" in record["path"], record
