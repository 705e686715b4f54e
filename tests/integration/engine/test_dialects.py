"""Live calls in the caller's dialect: what a caller hears, compared by audio with the prompt itself.

Demo customers (ivr/demo_backend.py) carry a preferred dialect; a caller's choice in the elderly
dialect menu, or an ops setting through the API, is remembered for their next call. The expected
audio is resolved by a prompt library built as the engine builds its own.

The module's callers phone the engine together (each from their own number, a second apart; the returning
caller's two calls one after the other), and each test judges its own calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import pytest_asyncio

from ivr.demo_backend import CUSTOMERS
from ivr.testing.caller import CallReport, Keys, Pause, TestCaller
from ivr.voice import PromptLibrary, PromptSource, ResolvedPrompt
from tests.integration.engine.conftest import RunningEngine, needs_tts
from tests.integration.engine.hearing import SAME, locate, played_prompts, prompt_library, resolved

pytestmark = [pytest.mark.integration, needs_tts]

CANTONESE_CALLER = "13900000001"
MINNAN_CALLER = "13900000002"
MANDARIN_ELDER = "13900000005"
HAKKA_CALLER = "13900000004"
STRANGER = "13600000042"
"""Not a customer of the demo back end."""
CALLER_GAP_S = 1.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def library() -> Iterator[PromptLibrary]:
    with prompt_library() as lib:
        yield lib


def put_dialect(engine: RunningEngine, number: str, dialect: str) -> dict[str, str]:
    request = urllib.request.Request(
        f"{engine.api}/api/callers/{urllib.parse.quote(number)}/dialect",
        data=json.dumps({"dialect": dialect}).encode(), method="PUT",
        headers={"Content-Type": "application/json", **engine.headers},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


@dataclass(frozen=True)
class Calls:
    """The module's calls by caller (a caller's error is raised by its own test) and what they rest on."""

    prompts: dict[tuple[str, str], ResolvedPrompt]
    """(prompt, dialect) → the prompt as the library resolves it."""
    ops_set: tuple[dict[str, str], dict[str, str]]
    """The API's answers to ops setting the Hakka customer's and the stranger's dialect."""
    results: dict[str, tuple[CallReport, ...] | BaseException]

    def reports(self, name: str) -> tuple[CallReport, ...]:
        result = self.results[name]
        if isinstance(result, BaseException):
            raise result
        return result


async def one_second_apart(position: int, call: Awaitable[T]) -> T:
    """Callers dial a second apart: a call set up while another's greeting starts cost that greeting its first
    second on a busy machine (both ends set up calls on the loop that also carries the audio)."""
    await asyncio.sleep(position * CALLER_GAP_S)
    return await call


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calls(engine: RunningEngine, library: PromptLibrary) -> AsyncIterator[Calls]:
    wanted = [("greeting", "yue"), ("greeting", "cmn"), ("greeting", "nan"), ("elderly_menu", "nan"),
              ("elderly_menu", "cmn")]
    prompts = {(prompt, dialect): await resolved(library, prompt, dialect) for prompt, dialect in wanted}
    yue, cmn, nan = prompts["greeting", "yue"], prompts["greeting", "cmn"], prompts["greeting", "nan"]
    # Ops set a dialect through the API, for a customer and for a caller the back end does not know.
    ops_set = (put_dialect(engine, HAKKA_CALLER, "nan"), put_dialect(engine, STRANGER, "yue"))
    base = 42000 + (os.getpid() % 50) * 100  # keep parallel test runs off each other's RTP ports
    caller = await TestCaller.open(rtp_ports=(base, base + 98))

    async def listen(number: str, seconds: float) -> tuple[CallReport, ...]:
        return (await caller.call(engine.uri, [Pause(seconds)], from_number=number, linger_s=0.0),)

    async def choose_then_return() -> tuple[CallReport, ...]:
        # First call: a Mandarin-speaking elder picks Cantonese (2) in the dialect menu, then hangs up.
        first = await caller.call(
            engine.uri, [Pause(cmn.duration_s + 3.0), Keys("2"), Pause(3.0)], from_number=MANDARIN_ELDER, linger_s=0.0
        )
        # The choice is remembered as the first call's record is written: the second call comes after that.
        await asyncio.to_thread(engine.call_detail, first.call_id)
        # Second call: greeted in Cantonese from the first word.
        second = await caller.call(engine.uri, [Pause(yue.duration_s + 2.0)], from_number=MANDARIN_ELDER, linger_s=0.0)
        return first, second

    callers = {
        "cantonese": listen(CANTONESE_CALLER, yue.duration_s + 2.0),
        "minnan": listen(MINNAN_CALLER, nan.duration_s + prompts["elderly_menu", "nan"].duration_s + 2.5),
        "returning": choose_then_return(),
        "ops_customer": listen(HAKKA_CALLER, nan.duration_s + 2.0),
        "ops_stranger": listen(STRANGER, yue.duration_s + 2.0),
    }
    try:
        results = await asyncio.gather(
            *(one_second_apart(i, call) for i, call in enumerate(callers.values())), return_exceptions=True
        )
    finally:
        await caller.close()
    yield Calls(prompts, ops_set, dict(zip(callers, results, strict=True)))


def test_demo_customers_have_the_dialects_under_test() -> None:
    assert CUSTOMERS[CANTONESE_CALLER].dialect == "yue"
    assert CUSTOMERS[MINNAN_CALLER].dialect == "nan"
    assert CUSTOMERS[MANDARIN_ELDER].dialect == "cmn" and CUSTOMERS[MANDARIN_ELDER].elderly
    assert STRANGER not in CUSTOMERS


def test_cantonese_caller_hears_the_cantonese_greeting(engine: RunningEngine, calls: Calls) -> None:
    yue, cmn = calls.prompts["greeting", "yue"], calls.prompts["greeting", "cmn"]
    assert yue.dialect_used == "yue" and yue.source is PromptSource.SYNTHESIZED
    (report,) = calls.reports("cantonese")
    assert report.answered
    heard_yue = locate(report.heard, yue.audio)
    assert heard_yue.score >= SAME, f"the Cantonese greeting was not what the caller heard: {heard_yue}"
    assert heard_yue.start_s < 1.5, "the greeting is the first thing a caller hears"
    heard_cmn = locate(report.heard, cmn.audio)
    assert heard_cmn.score < 0.6, f"the comparison cannot tell Mandarin from Cantonese: {heard_cmn}"
    record = engine.call_detail(report.call_id)["record"]
    assert record["dialect"] == "yue"


def test_minnan_caller_hears_the_recording_and_mandarin_where_there_is_none(
    engine: RunningEngine, calls: Calls
) -> None:
    greeting, menu = calls.prompts["greeting", "nan"], calls.prompts["elderly_menu", "nan"]
    assert greeting.source is PromptSource.RECORDED and greeting.path is not None
    assert greeting.path.name == "greeting.wav" and greeting.path.parent.name == "nan"
    assert menu.dialect_used == "cmn" and menu.source is PromptSource.SYNTHESIZED
    (report,) = calls.reports("minnan")
    assert report.answered
    heard_greeting = locate(report.heard, greeting.audio)
    assert heard_greeting.score >= SAME, f"the recorded Minnan greeting was not played: {heard_greeting}"
    heard_menu = locate(report.heard, menu.audio, after_s=heard_greeting.start_s + greeting.duration_s - 0.5)
    assert heard_menu.score >= SAME, f"the Mandarin elderly menu was not played: {heard_menu}"
    played = {p.prompt: p for p in played_prompts(engine.log, report.call_id)}
    assert (played["greeting"].dialect, played["greeting"].source) == ("nan", "recorded")
    assert (played["elderly_menu"].dialect, played["elderly_menu"].source) == ("cmn", "synthesized")


def test_returning_caller_is_greeted_in_the_dialect_chosen_last_time(engine: RunningEngine, calls: Calls) -> None:
    prompts = calls.prompts
    cmn, menu, yue = prompts["greeting", "cmn"], prompts["elderly_menu", "cmn"], prompts["greeting", "yue"]
    first, second = calls.reports("returning")
    assert first.answered
    assert locate(first.heard, cmn.audio).score >= SAME, "a Mandarin customer is first greeted in Mandarin"
    detail = engine.call_detail(first.call_id)
    assert detail["record"]["dialect"] == "yue", [e for e in detail["journey"] if e["kind"] == "input"]
    menu_start = menu.audio[: int(2.5 * 8000)]
    assert locate(first.heard, menu_start).score >= SAME, "the dialect menu was playing when the key was pressed"
    heard = locate(second.heard, yue.audio)
    assert heard.score >= SAME, f"the returning caller was not greeted in Cantonese: {heard}"
    assert locate(second.heard, cmn.audio).score < 0.6


def test_dialect_set_by_ops_greets_the_next_call(engine: RunningEngine, calls: Calls) -> None:
    """Ops set a dialect through the API, for a customer and for a caller the back end does not know."""
    nan, yue = calls.prompts["greeting", "nan"], calls.prompts["greeting", "yue"]
    assert calls.ops_set == ({"caller": HAKKA_CALLER, "dialect": "nan"}, {"caller": STRANGER, "dialect": "yue"})
    (customer,), (stranger,) = calls.reports("ops_customer"), calls.reports("ops_stranger")
    heard_nan = locate(customer.heard, nan.audio)
    assert heard_nan.score >= SAME, f"the Hakka customer set to Minnan did not hear the Minnan recording: {heard_nan}"
    heard_yue = locate(stranger.heard, yue.audio)
    assert heard_yue.score >= SAME, f"a caller unknown to the back end ignored the dialect ops set: {heard_yue}"
    assert engine.call_detail(stranger.call_id)["record"]["dialect"] == "yue"
