"""The engine's records of real calls: each path a caller can take ends in the right record, journey
and report figures.

One engine (fresh database, the repository's hotline flow, two baresip agents logged in by
REGISTER) takes four calls at once, placed by our SIP test caller:

- self-served: "check my policy" (speech), a valid policy number by keys, no more help, survey 10;
- queued and answered: key 0 → the general queue → agent g1 talks 3 s and hangs up → survey 7;
- abandoned: an elderly customer presses 0 for the green channel (no agent has the skill) and
  hangs up while queued;
- breakpoint: the failing policy's data dip → caught by agent s1 in the service queue (rescued).

Then every record, journey and the figures of GET /api/reports/summary are checked exactly against
what those four calls must produce.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from ivr.demo_backend import CUSTOMERS, FAILING_POLICY, POLICIES
from ivr.testing import peers
from ivr.testing.caller import AwaitPrompt, CallReport, Keys, Pause, Say, Step, TestCaller
from tests.integration.engine.agents import (
    AgentSpec,
    baresip_agent,
    running_engine,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import RunningEngine
from tests.integration.engine.hours import night_now
from tests.integration.sip.sip_peers import needs_baresip

pytestmark = [pytest.mark.integration, needs_baresip]

SELF_SERVED = "13600000201"
ANSWERED = "13600000202"
ABANDONED = "13900000005"
"""An 80-year-old demo customer: the flow offers him the green channel (queue `elderly`)."""
BREAKPOINT = "13600000204"
VALID_POLICY = "2005123456"
GENERAL_AGENT = AgentSpec("g1", {"general": 3})
SERVICE_AGENT = AgentSpec("s1", {"service": 3})
AGENT_TALK_S = 3.0
KEYS_FOR_THE_AGENT = "5#"
"""Keys the answered caller presses while talking to the agent: not a survey score."""
SURVEY = {SELF_SERVED: 10, ANSWERED: 7}
"""Survey scores keyed by the callers who give one: a promoter and a passive."""
@dataclass
class Placed:
    engine: RunningEngine
    reports: dict[str, CallReport]
    call_ids: dict[str, str]
    details: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    night: bool


class Phone:
    """Our test caller plus the means to act during a call: keys by SIP INFO, hang up."""

    def __init__(self, caller: TestCaller, engine: RunningEngine) -> None:
        self.caller = caller
        self.engine = engine

    async def press(self, call_id: str, digits: str) -> None:
        leg = next(leg for leg in self.caller.ua.legs if leg.call_id == call_id)
        for digit in digits:
            await leg.send_dtmf(digit)
            await asyncio.sleep(0.15)

    async def hang_up(self, call_id: str) -> None:
        for leg in self.caller.ua.legs:
            if leg.call_id == call_id:
                await leg.bye()

    async def when_played(self, call_id: str, prompt: str, timeout_s: float = 90.0) -> float:
        """Wait until the engine starts playing `prompt` to the call; returns its duration (s)."""
        played = await wait_for_log(self.engine, "prompt_played", timeout_s, call_id=call_id, prompt=prompt)
        return float(played[0]["duration_s"])

    async def place(
        self, number: str, steps: list[Step], during: Callable[[str], Awaitable[None]]
    ) -> tuple[str, CallReport]:
        """Call from `number` running `steps`, and `during(call_id)` alongside; the caller stays on
        the line until the engine hangs up (or `during` hangs up)."""
        task = asyncio.create_task(
            self.caller.call(self.engine.uri, steps, from_number=number, linger_s=150.0, max_duration_s=170.0)
        )
        try:
            call_id = str((await wait_for_log(self.engine, "invite_received", 30.0, caller=number))[0]["call_id"])
            await during(call_id)
        except BaseException:
            task.cancel()
            raise
        return call_id, await task


async def place_all(phone: Phone) -> dict[str, tuple[str, CallReport]]:
    async def self_served(call_id: str) -> None:
        await phone.when_played(call_id, "more_help")
        await phone.press(call_id, "2")
        await phone.when_played(call_id, "survey")
        await phone.press(call_id, f"{SURVEY[SELF_SERVED]}#")

    async def answered(call_id: str) -> None:
        await wait_for_log(phone.engine, "call_bridged", 60.0, call_id=call_id)
        await phone.press(call_id, KEYS_FOR_THE_AGENT)  # e.g. an extension the agent asked for
        await phone.when_played(call_id, "survey", AGENT_TALK_S + 30.0)
        await phone.press(call_id, f"{SURVEY[ANSWERED]}#")

    async def abandoned(call_id: str) -> None:
        prompt_s = await phone.when_played(call_id, "green_channel", 60.0)
        await asyncio.sleep(prompt_s + 4.0)  # the green-channel prompt, then a few seconds of music on hold
        await phone.hang_up(call_id)

    async def rescued(call_id: str) -> None:
        await wait_for_log(phone.engine, "call_bridged", 120.0, call_id=call_id)
        await phone.when_played(call_id, "survey", AGENT_TALK_S + 30.0)
        await phone.hang_up(call_id)  # no score: a survey left unanswered

    # The greeting's trailing silence sounds like the end of a prompt: speak into the open question.
    policy_by_speech: list[Step] = [AwaitPrompt(), Pause(3.0), Say("check my policy"), AwaitPrompt()]
    placed = await asyncio.gather(
        phone.place(SELF_SERVED, [*policy_by_speech, Keys(f"{VALID_POLICY}#")], self_served),
        phone.place(ANSWERED, [Pause(1.0), Keys("0")], answered),
        phone.place(ABANDONED, [Pause(1.0), Keys("0")], abandoned),
        phone.place(BREAKPOINT, [*policy_by_speech, Keys(f"{FAILING_POLICY}#")], rescued),
    )
    return dict(zip([SELF_SERVED, ANSWERED, ABANDONED, BREAKPOINT], placed, strict=True))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def placed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Placed]:
    if peers.ESPEAK_NG.missing:
        pytest.skip(peers.ESPEAK_NG.reason)
    tmp = tmp_path_factory.mktemp("records")
    config = write_engine_config(tmp, [GENERAL_AGENT, SERVICE_AGENT])
    talk = np.zeros(int(8000 * AGENT_TALK_S), dtype=np.int16)  # baresip hangs up at the end of its file
    night = night_now()
    async with running_engine(tmp / "engine", config) as engine:
        async with (
            baresip_agent(tmp, GENERAL_AGENT, engine.sip_port, says=talk) as general,
            baresip_agent(tmp, SERVICE_AGENT, engine.sip_port, says=talk) as service,
        ):
            await general.expect(r"g1@.*200 OK")
            await service.expect(r"s1@.*200 OK")
            caller = await TestCaller.open(rtp_ports=(43400, 43498))
            try:
                results = await place_all(Phone(caller, engine))
            finally:
                await caller.close()
        call_ids = {number: call_id for number, (call_id, _) in results.items()}
        details = {number: await asyncio.to_thread(engine.call_detail, call_id) for number, call_id in call_ids.items()}
        summary = await asyncio.to_thread(engine.get, "/api/reports/summary")
        yield Placed(engine, {n: r for n, (_, r) in results.items()}, call_ids, details, summary, night)


def record(placed: Placed, number: str) -> dict[str, Any]:
    return dict(placed.details[number]["record"])


def journey(placed: Placed, number: str) -> list[dict[str, Any]]:
    return list(placed.details[number]["journey"])


WALK_IN = ["lookup", "is_elderly", "need"]
"""A caller the demo back end does not know, up to the open question."""
POLICY_BY_KEYS = [*WALK_IN, "policy_query", "fetch_policy"]


def to_a_human(placed: Placed, queue_node: str) -> list[str]:
    return ["hours", *(["night_service"] if placed.night else []), "by_want", queue_node]


def test_the_scenario_uses_demo_data_as_described() -> None:
    assert VALID_POLICY in POLICIES and FAILING_POLICY not in POLICIES
    assert CUSTOMERS[ABANDONED].elderly
    assert not {SELF_SERVED, ANSWERED, BREAKPOINT} & set(CUSTOMERS)


def test_every_call_was_answered_by_the_engine(placed: Placed) -> None:
    for number, report in placed.reports.items():
        assert report.answered, f"call from {number}: {report.status} {report.timeline}"


def test_self_served_policy_query_with_survey(placed: Placed) -> None:
    rec = record(placed, SELF_SERVED)
    assert rec["outcome"] == "self-served"
    assert (rec["queue"], rec["agent_id"], rec["breakpoint_node"]) == ("", "", "")
    assert rec["intent"] == "policy_query"
    assert rec["dialect"] == "en", "the caller spoke English"
    assert rec["survey_score"] == SURVEY[SELF_SERVED]
    assert rec["path"] == [*POLICY_BY_KEYS, "say_policy", "more_help", "survey", "goodbye"]
    assert rec["variables"]["policy_no"] == VALID_POLICY
    assert placed.reports[SELF_SERVED].hangup_by == "far_end", "the IVR says goodbye and hangs up"


def test_queued_and_answered_by_an_agent(placed: Placed) -> None:
    rec = record(placed, ANSWERED)
    assert rec["outcome"] == "to-agent"
    assert (rec["queue"], rec["agent_id"]) == ("general", GENERAL_AGENT.agent_id)
    assert rec["wait_s"] is not None and 0.0 <= rec["wait_s"] < 15.0
    assert rec["survey_score"] == SURVEY[ANSWERED], "keys pressed to the agent were taken as the survey score"
    assert rec["breakpoint_node"] == ""
    assert rec["path"] == [*WALK_IN, "agent", *to_a_human(placed, "queue_general"), "survey", "goodbye"]


def test_abandoned_while_queued(placed: Placed) -> None:
    rec = record(placed, ABANDONED)
    assert rec["outcome"] == "abandoned"
    assert (rec["queue"], rec["agent_id"]) == ("elderly", "")
    assert rec["survey_score"] is None
    assert rec["path"] == "lookup remember_dialect is_elderly elderly_menu green_channel queue_elderly".split()
    assert placed.reports[ABANDONED].hangup_by != "far_end", "the caller hung up, the engine did not"


def test_failed_data_dip_is_a_breakpoint_caught_by_an_agent(placed: Placed) -> None:
    rec = record(placed, BREAKPOINT)
    assert rec["breakpoint_node"] == "fetch_policy"
    assert rec["outcome"] == "to-agent"
    assert (rec["queue"], rec["agent_id"]) == ("service", SERVICE_AGENT.agent_id)
    assert rec["intent"] == "policy_query"
    assert rec["survey_score"] is None
    assert rec["path"] == [
        *POLICY_BY_KEYS,
        "dip_failed",
        "want_service",
        *to_a_human(placed, "queue_service"),
        "survey",
    ]


def test_journeys_are_complete_and_ordered(placed: Placed) -> None:
    for number in placed.call_ids:
        events = journey(placed, number)
        assert [e["seq"] for e in events] == list(range(len(events))), f"{number}: gaps in the journey"
        assert events[0]["kind"] == "call_started" and events[-1]["kind"] == "call_finished"
        assert events[-1]["data"]["outcome"] == record(placed, number)["outcome"]
        entered = [e["node"] for e in events if e["kind"] == "node_entered"]
        assert entered == record(placed, number)["path"], f"{number}: the journey's nodes are not the path"
        breaks = {e["node"] for e in events if e["breakpoint"]}
        assert breaks == ({"fetch_policy"} if number == BREAKPOINT else set()), f"{number}: breakpoints {breaks}"
    keyed = [e["data"].get("digits") for e in journey(placed, SELF_SERVED) if e["kind"] == "input"]
    assert VALID_POLICY in keyed and "2" in keyed and str(SURVEY[SELF_SERVED]) in keyed, keyed


def test_report_summary_figures_are_exact(placed: Placed) -> None:
    s = placed.summary
    records = [record(placed, n) for n in placed.call_ids]
    offered = [r for r in records if r["queue"]]
    answered = [r for r in offered if r["agent_id"]]
    scores = list(SURVEY.values())
    promoters = sum(1 for x in scores if x >= 9)
    detractors = sum(1 for x in scores if x <= 6)
    expected_waits = [record(placed, n)["wait_s"] for n in (ANSWERED, BREAKPOINT)]
    assert {
        k: s[k]
        for k in (
            "calls",
            "finished",
            "in_progress",
            "interrupted",
            "self_served",
            "offered",
            "answered",
            "abandoned",
            "surveys",
            "promoters",
            "detractors",
        )
    } == {
        "calls": 4,
        "finished": 4,
        "in_progress": 0,
        "interrupted": 0,
        "self_served": 1,
        "offered": 3,
        "answered": 2,
        "abandoned": 1,
        "surveys": 2,
        "promoters": promoters,
        "detractors": detractors,
    }
    assert len(offered) == 3 and len(answered) == 2
    assert s["containment"] == pytest.approx(1 / 4)
    assert s["answer_rate"] == pytest.approx(2 / 3)
    assert s["abandon_rate"] == pytest.approx(1 / 3)
    assert s["service_level"] == pytest.approx(2 / 3), "both answered calls waited less than 20 s"
    assert s["asa_s"] == pytest.approx(sum(expected_waits) / 2, abs=1e-6)
    assert s["nps"] == pytest.approx(100.0 * (promoters - detractors) / len(scores))
    # Two policy queries said; key 0 (to a human, at the open question or in the elderly menu) states no need.
    assert s["intent_mix"] == {"policy_query": 2}
    assert s["dialects"] == {"cmn": 2, "en": 2}
    assert s["breakpoints"] == [{"node": "fetch_policy", "steps": 1, "calls": 1, "rescued": 1}]
    funnel = {stage["stage"]: stage["calls"] for stage in s["funnel"]}
    assert funnel["calls"] == 4
    assert funnel["self_service_broke"] == 1 and funnel["continued_by_agent"] == 1
    assert funnel["intent_captured"] == 2
