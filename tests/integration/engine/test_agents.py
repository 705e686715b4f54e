"""Human queues with real softphones: baresip agents log in by REGISTER (digest) to `ivr serve`,
callers (our SIP test caller, SIPp) say or key their way into a queue, and the engine rings the
right agent with the X-IVR context, bridges the audio, re-rings on no answer, overflows, calls
back, puts the elderly first, shows the agent a screen-pop, and shares the ACD through Redis.

Every engine here runs the repository's hotline flow with test agents.yaml/queues.yaml (short
ring and wrap-up times) passed through `ivr serve --config`.
"""

from __future__ import annotations

import asyncio
import pathlib
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from ivr.testing import peers
from ivr.testing.caller import AwaitPrompt, CallReport, Keys, Pause, PlayFile, Say, Step, TestCaller
from ivr.testing.redis_server import local_redis_server
from ivr.testing.rtpprobe import dominant_frequency_hz
from ivr.testing.sipharness import start as start_harness
from tests.integration.engine.agents import (
    AgentSpec,
    BaresipAgent,
    baresip_agent,
    invite_headers,
    log_events,
    running_engine,
    sipp_caller_scenario,
    tone,
    until_agent_on_call,
    until_recorded,
    wait_for_log,
    write_engine_config,
    write_wav,
)
from tests.integration.engine.conftest import RunningEngine, needs_tts
from tests.integration.sip.sip_peers import HOST, needs_baresip, needs_sipp, run_sipp

pytestmark = [pytest.mark.integration, needs_baresip]

CALLER_TONE_HZ = 1000.0
AGENT_TONE_HZ = 600.0
ELDERLY_CALLER = "13900000001"
"""The demo back end's 78-year-old Cantonese speaker: the flow offers her the green channel."""
TO_A_HUMAN: list[Step] = [Pause(1.0), Keys("0")]
"""Key 0 during the greeting (type-ahead): the open question takes it, and the flow queues for `general`."""


async def caller_on(rtp_base: int) -> TestCaller:
    return await TestCaller.open(rtp_ports=(rtp_base, rtp_base + 98))


def caller_tone(tmp: pathlib.Path) -> pathlib.Path:
    return write_wav(tmp / "caller-tone.wav", tone(CALLER_TONE_HZ, 2.0))


async def hang_up(caller: TestCaller, call_id: str) -> None:
    """Hang up the test caller's call `call_id` now (its script ends at the next step)."""
    for leg in caller.ua.legs:
        if leg.call_id == call_id:
            await leg.bye()


async def call_until_bridged(engine: RunningEngine, *, rtp_base: int, from_number: str,
                             timeout_s: float = 60.0) -> dict[str, Any]:
    """A caller keys 0 into `general`, stays until the engine logs the bridge to an agent, then
    hangs up; returns that `call_bridged` log entry."""
    caller = await caller_on(rtp_base)
    try:
        task = asyncio.create_task(caller.call(engine.uri, [*TO_A_HUMAN, *[Pause(1.0)] * 90],
                                               from_number=from_number, linger_s=0.0))
        bridged = (await wait_for_log(engine, "call_bridged", timeout_s))[0]
        await hang_up(caller, bridged["call_id"])
        await asyncio.wait_for(task, 10)
    finally:
        await caller.close()
    return bridged


def only_invite(agent: BaresipAgent) -> dict[str, str]:
    invites = agent.invites()
    assert len(invites) == 1, f"agent {agent.spec.agent_id} got {len(invites)} INVITEs:\n{agent.output[-3000:]}"
    return invite_headers(invites[0])


# --- 1, 2, 6: one call through speech, a failed data dip and the service queue -------------------


@dataclass
class ServedCall:
    engine: RunningEngine
    report: CallReport
    call_id: str
    bridged: dict[str, Any]
    screen_pop: dict[str, Any]
    detail: dict[str, Any]
    slow_agent: BaresipAgent
    agent: BaresipAgent
    agent_heard: np.ndarray[Any, np.dtype[np.int16]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServedCall]:
    """A caller says "check my policy", keys a policy number whose data dip fails (a journey
    breakpoint), and is queued for `service` (skills-based) while both agents are free. a1 logged in
    first (longest idle, first by id) but a2 is the better skilled: a2 must get the call."""
    tmp = tmp_path_factory.mktemp("served")
    a1 = AgentSpec("a1", {"service": 2, "general": 2})
    a2 = AgentSpec("a2", {"service": 5, "general": 2})
    config = write_engine_config(tmp, [a1, a2], {"service": {"strategy": "skills-based"}})
    async with running_engine(tmp / "engine", config) as engine:
        async with baresip_agent(tmp, a1, engine.sip_port) as first:
            await first.expect(r"a1@.*200 OK")
            async with baresip_agent(tmp, a2, engine.sip_port, says=tone(AGENT_TONE_HZ, 60.0)) as second:
                await second.expect(r"a2@.*200 OK")
                caller = await caller_on(43100)
                try:
                    talk = [PlayFile(caller_tone(tmp))] * 50
                    steps: list[Step] = [AwaitPrompt(), Say("check my policy"), AwaitPrompt(),
                                         Keys("2021005000#"), *talk]
                    task = asyncio.create_task(caller.call(engine.uri, steps, from_number="13700000301",
                                                           linger_s=0.0, max_duration_s=110.0))
                    bridged = (await wait_for_log(engine, "call_bridged", 100.0))[0]
                    screen_pop = await until_agent_on_call(engine, "a2", bridged["call_id"])
                    await until_recorded(second, 4.0)  # both sides talk through the bridge
                    await hang_up(caller, bridged["call_id"])
                    async with asyncio.timeout(15):
                        report = await task
                finally:
                    await caller.close()
                await second.expect(r"terminated")
                detail = await asyncio.to_thread(engine.call_detail, bridged["call_id"])
                yield ServedCall(engine, report, bridged["call_id"], bridged, screen_pop, detail, first, second,
                                 second.heard())


@needs_tts
def test_skilled_agent_gets_the_caller_with_the_ivr_context_in_x_ivr_headers(served: ServedCall) -> None:
    assert served.bridged["agent"] == "a2", "skills-based: the level-5 agent, not the longest idle"
    assert served.slow_agent.invites() == [], "a1 was never rung"
    headers = only_invite(served.agent)
    record = served.detail["record"]
    assert headers["x-ivr-call-id"] == served.call_id
    assert headers["x-ivr-queue"] == "service" == record["queue"]
    assert headers["x-ivr-intent"] == "policy_query" == record["intent"]
    assert headers["x-ivr-dialect"] == "en" == record["dialect"]
    assert urllib.parse.unquote(headers["x-ivr-transcript"]) == record["transcript"]
    assert " " not in headers["x-ivr-transcript"] and "policy" in record["transcript"]
    assert abs(float(headers["x-ivr-confidence"]) - float(record["confidence"])) < 0.01
    assert headers["x-ivr-breakpoint"] == "fetch_policy" == record["breakpoint_node"]


@needs_tts
def test_audio_flows_both_ways_through_the_bridge(served: ServedCall) -> None:
    agent_tail = served.agent_heard[-3 * 8000:]
    assert agent_tail.size == 3 * 8000, "the agent recorded less than 3 s"
    assert dominant_frequency_hz(agent_tail) == pytest.approx(CALLER_TONE_HZ, abs=15)
    caller_tail = served.report.heard[-3 * 8000:]
    assert dominant_frequency_hz(caller_tail) == pytest.approx(AGENT_TONE_HZ, abs=15)


@needs_tts
def test_screen_pop_shows_what_the_ivr_learned_while_the_agent_talks(served: ServedCall) -> None:
    pop = served.screen_pop
    assert pop["agent"]["state"] == "in_call"
    call = pop["call"]
    assert call is not None and call["call_id"] == served.call_id
    assert call["dialect"] == "en"
    assert call["context"]["intent"] == "policy_query"
    assert "policy" in call["context"]["transcript"]
    assert pop["record"] is None or pop["record"]["call_id"] == served.call_id


# --- 1 (SIPp caller): keys into `general`, longest idle agent ----------------------------------


@needs_sipp
async def test_sipp_caller_keys_into_general_and_reaches_the_longest_idle_agent(tmp_path: pathlib.Path) -> None:
    a1, a2 = AgentSpec("a1", {"general": 2}), AgentSpec("a2", {"general": 2})
    config = write_engine_config(tmp_path, [a1, a2])  # general: longest-idle
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, a2, engine.sip_port) as idle_longest:
            await idle_longest.expect(r"a2@.*200 OK")
            async with baresip_agent(tmp_path, a1, engine.sip_port) as later:
                await later.expect(r"a1@.*200 OK")
                sipp = asyncio.create_task(run_sipp(sipp_caller_scenario(tmp_path, "13700000401", 30.0),
                                                    engine.sip_port, tmp_path, service="95519", timeout_s=60))
                bridged = (await wait_for_log(engine, "call_bridged", 45.0))[0]
                result = await sipp
                await idle_longest.expect(r"terminated")
    assert result.returncode == 0, result.explain()
    assert bridged["agent"] == "a2", "longest idle: a2 logged in first (a1 would win a tie on id)"
    assert later.invites() == []
    caller_call = log_events(engine, "invite_received", caller="13700000401")[0]["call_id"]
    headers = only_invite(idle_longest)
    assert headers["x-ivr-call-id"] == caller_call == bridged["call_id"]
    assert headers["x-ivr-queue"] == "general"
    assert headers["x-ivr-dialect"] == "cmn"
    assert "x-ivr-breakpoint" not in headers, "no self-service step failed on this call"


# --- 3: no answer -> next agent, miss counted ------------------------------------------------------


async def test_agent_who_does_not_answer_is_skipped_and_the_miss_counted(tmp_path: pathlib.Path) -> None:
    a1, a2 = AgentSpec("a1", {"general": 2}), AgentSpec("a2", {"general": 2})
    config = write_engine_config(tmp_path, [a1, a2], defaults={"ring_timeout_s": 3})
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, a1, engine.sip_port, auto_answer=False) as deaf:
            await deaf.expect(r"a1@.*200 OK")  # logged in first: longest idle, rung first
            async with baresip_agent(tmp_path, a2, engine.sip_port) as answering:
                await answering.expect(r"a2@.*200 OK")
                bridged = await call_until_bridged(engine, rtp_base=43300, from_number="13700000402")
                await deaf.expect(r"CANCEL sip:")
    assert bridged["agent"] == "a2"
    missed = log_events(engine, "agent_not_answering", agent="a1")
    assert [entry["calls_missed"] for entry in missed] == [1], missed
    assert only_invite(deaf)["x-ivr-call-id"] == bridged["call_id"]
    assert only_invite(answering)["x-ivr-call-id"] == bridged["call_id"]


# --- 4: overflow and callback ----------------------------------------------------------------------


async def test_max_wait_overflows_the_caller_to_another_queue(tmp_path: pathlib.Path) -> None:
    service_only = AgentSpec("a1", {"service": 3})
    config = write_engine_config(tmp_path, [service_only],
                                 {"general": {"max_wait_s": 4, "overflow": "queue:service"}})
    async with running_engine(tmp_path / "engine", config) as engine:
        async with baresip_agent(tmp_path, service_only, engine.sip_port) as agent:
            await agent.expect(r"a1@.*200 OK")
            bridged = await call_until_bridged(engine, rtp_base=43400, from_number="13700000403")
    enqueued = log_events(engine, "call_enqueued")[0]
    assert enqueued["queue"] == "general"
    assert bridged["queue"] == "service" and bridged["agent"] == "a1"
    headers = only_invite(agent)
    assert headers["x-ivr-queue"] == "service"
    assert headers["x-ivr-call-id"] == enqueued["call_id"] == bridged["call_id"]


async def test_callback_keeps_the_place_then_rings_the_agent_first_and_then_the_caller(
    tmp_path: pathlib.Path,
) -> None:
    number = "13700000404"
    harness = await start_harness(HOST, 0)  # the caller's phone, where the callback rings
    try:
        agent_spec = AgentSpec("a1", {"general": 2})
        config = write_engine_config(tmp_path, [agent_spec],
                                     callback_uri_template=f"sip:{{number}}@{HOST}:{harness.port}")
        async with running_engine(tmp_path / "engine", config) as engine:
            caller = await caller_on(43500)
            try:
                keys_one = [step for _ in range(30) for step in (Pause(2.0), Keys("1"))]
                report = await caller.call(engine.uri, [*TO_A_HUMAN, Pause(4.0), *keys_one],
                                           from_number=number, linger_s=15.0, max_duration_s=90.0)
            finally:
                await caller.close()
            registered = await wait_for_log(engine, "callback_registered", 5.0)
            record = (await asyncio.to_thread(engine.call_detail, report.call_id))["record"]
            assert not log_events(engine, "call_placed"), "nobody to call back yet: no agent logged in"
            async with baresip_agent(tmp_path, agent_spec, engine.sip_port) as agent:
                await agent.expect(r"a1@.*200 OK")
                bridged = (await wait_for_log(engine, "callback_bridged", 30.0))[0]
                agent.process.terminate()  # the agent hangs up (baresip sends BYE on SIGTERM)
                async with asyncio.timeout(15):
                    called_back = await harness.app.finished.get()
            placed = [entry["to"] for entry in log_events(engine, "call_placed")]
    finally:
        await harness.close()
    assert report.hangup_by == "far_end", "the engine said goodbye after taking the number"
    assert record["outcome"] == "callback" and record["queue"] == "general"
    assert registered[0]["queue"] == "general"
    assert bridged["agent"] == "a1" and bridged["number"] == number and bridged["call_id"] == report.call_id
    assert len(placed) == 2 and "a1" in placed[0], f"the agent is called first: {placed}"
    assert placed[1] == f"sip:{number}@{HOST}:{harness.port}"
    assert called_back.answered and called_back.dialed == number
    headers = only_invite(agent)
    assert headers["x-ivr-call-id"] == report.call_id and headers["x-ivr-queue"] == "general"


# --- 5: elderly first ------------------------------------------------------------------------------


async def test_elderly_caller_jumps_ahead_of_callers_who_waited_longer(tmp_path: pathlib.Path) -> None:
    agent_spec = AgentSpec("a1", {"general": 3, "elderly": 3}, dialects=("cmn", "yue"))
    config = write_engine_config(tmp_path, [agent_spec])
    async with running_engine(tmp_path / "engine", config) as engine:
        caller = await caller_on(43600)
        try:
            hold = [Pause(1.0)] * 100
            calls = [asyncio.create_task(caller.call(engine.uri, [*TO_A_HUMAN, *hold], from_number=number,
                                                     linger_s=0.0, max_duration_s=110.0))
                     for number in ("13700000405", "13700000406")]
            earlier = await wait_for_log(engine, "call_enqueued", 45.0, count=2, queue="general")
            calls.append(asyncio.create_task(caller.call(engine.uri, [*TO_A_HUMAN, *hold],
                                                         from_number=ELDERLY_CALLER, linger_s=0.0,
                                                         max_duration_s=110.0)))
            elderly = (await wait_for_log(engine, "call_enqueued", 45.0, queue="elderly"))[0]
            async with baresip_agent(tmp_path, agent_spec, engine.sip_port) as agent:
                await agent.expect(r"a1@.*200 OK")
                bridged = (await wait_for_log(engine, "call_bridged", 20.0))[0]
                for entry in [*earlier, elderly]:
                    await hang_up(caller, entry["call_id"])
                await asyncio.wait_for(asyncio.gather(*calls), 10)
        finally:
            await caller.close()
    assert all(entry["timestamp"] < elderly["timestamp"] for entry in earlier)
    assert bridged["call_id"] == elderly["call_id"] and bridged["queue"] == "elderly"
    headers = only_invite(agent)
    assert headers["x-ivr-call-id"] == elderly["call_id"]
    assert headers["x-ivr-queue"] == "elderly" and headers["x-ivr-dialect"] == "yue"


# --- 7: two nodes sharing the ACD through Redis ----------------------------------------------------


@pytest.mark.skipif(peers.REDIS_SERVER.missing, reason=peers.REDIS_SERVER.reason)
async def test_caller_on_node_a_is_answered_by_an_agent_registered_on_node_b(tmp_path: pathlib.Path) -> None:
    agent_spec = AgentSpec("a1", {"general": 2})
    with local_redis_server() as redis_url:
        configs = {}
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            configs[node] = write_engine_config(tmp_path / node, [agent_spec], acd_backend="redis",
                                                redis_url=redis_url, node_id=node)
        async with running_engine(tmp_path / "a", configs["node-a"]) as node_a, \
                running_engine(tmp_path / "b", configs["node-b"]) as node_b:
            async with baresip_agent(tmp_path, agent_spec, node_b.sip_port) as agent:
                await agent.expect(r"a1@.*200 OK")
                bridged = await call_until_bridged(node_a, rtp_base=43700, from_number="13700000407")
                agents_seen_by_a = await asyncio.to_thread(node_a.get, "/api/agents")
    assert log_events(node_a, "acd_started", node="node-a", shared=True)
    assert bridged["agent"] == "a1"
    assert not log_events(node_b, "call_placed"), "node B holds the registration, but node A rings"
    invite = agent.invites()
    assert len(invite) == 1 and f"UDP 127.0.0.1:{node_a.sip_port} ->" in agent.output
    assert invite_headers(invite[0])["x-ivr-call-id"] == bridged["call_id"]
    assert any(a["agent_id"] == "a1" for a in agents_seen_by_a["agents"])
