"""Call recording and supervisors on a live call (issue 20), with real phones.

One call: our test caller (a 1000 Hz tone) keys into `general`, whose calls are recorded; baresip
agent a1 answers (a 600 Hz tone). While they talk, the recording is paused and resumed by API; then
supervisor s1 (another baresip, a 1500 Hz tone) is called by the engine (`POST .../supervise`) and
listens, whispers, then barges, each for a few seconds. Every stream (the caller's ear, the agent's,
the supervisor's, the recording's two channels) ends when the caller hangs up, so each phase is found
by counting back from the end. Tones are checked with the Goertzel projection (`ivr.media.goertzel`).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from numpy.typing import NDArray

from ivr.media.goertzel import goertzel_basis, tone_powers
from ivr.testing.caller import CallReport, Pause, PlayFile, TestCaller
from tests.integration.engine.agents import (
    AgentSpec,
    BaresipAgent,
    baresip_agent,
    running_engine,
    tone,
    until_agent_on_call,
    until_recorded,
    wait_for_log,
    write_engine_config,
    write_wav,
)
from tests.integration.engine.conftest import RunningEngine, needs_tts
from tests.integration.engine.test_agents import TO_A_HUMAN, caller_on, hang_up
from tests.integration.sip.sip_peers import needs_baresip

pytestmark = [pytest.mark.integration, needs_baresip, needs_tts]

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 1000.0, 600.0, 1500.0
TONES = (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)
PHASE_S = 4.0
"""Each supervision mode lasts this long; checks use its middle 2 s (1 s margin each side)."""
RATE_HZ = 8000


BLOCK = RATE_HZ // 10
"""Tones are measured per 100 ms block (each test tone is a whole number of cycles in it). One window over seconds
would also demand an unbroken phase: a stream re-anchored on its arrival time (a recording's `ChannelClock` after a
200 ms skew, a mixer's restart on a busy machine) shifts the tone's phase, and the agent's tone then measured 9 %
of a right channel that held nothing else."""


def tone_shares(audio: NDArray[np.int16]) -> dict[float, float]:
    """Each test tone's share of the audio's energy (a pure tone: ~1; absent: ~0)."""
    blocks = audio[: len(audio) // BLOCK * BLOCK].astype(np.float64).reshape(-1, BLOCK)
    energy = max(float((blocks**2).sum()), 1.0)
    powers = tone_powers(blocks, goertzel_basis(TONES, BLOCK, RATE_HZ)).sum(axis=0)
    return {f: float(p) / energy for f, p in zip(TONES, powers, strict=True)}


def heard_tones(audio: NDArray[np.int16]) -> set[float]:
    """The test tones present in `audio` (each at least 10 % of its energy)."""
    assert len(audio) >= RATE_HZ, f"only {len(audio)} samples to check"
    return {f for f, share in tone_shares(audio).items() if share > 0.10}


def back_from_end(audio: NDArray[np.int16], from_s: float, to_s: float) -> NDArray[np.int16]:
    """The audio between `from_s` and `to_s` seconds before its end (from_s > to_s)."""
    end = len(audio)
    return audio[max(0, end - int(from_s * RATE_HZ)) : end - int(to_s * RATE_HZ)]


def post(engine: RunningEngine, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(engine.api + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={**engine.headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get_bytes(engine: RunningEngine, path: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(engine.api + path, headers=engine.headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read(), response.headers.get("Content-Type", "")


def read_stereo(data: bytes) -> NDArray[np.int16]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[22:24], "little") == 2 and int.from_bytes(data[24:28], "little") == RATE_HZ
    return np.frombuffer(data[44:], dtype="<i2").reshape(-1, 2)


@dataclass
class SupervisedCall:
    engine: RunningEngine
    call_id: str
    report: CallReport
    agent: BaresipAgent
    supervisor: BaresipAgent
    detail: dict[str, Any]
    marks: dict[str, float]
    """Seconds before the caller hung up at which each phase began."""
    responses: dict[str, tuple[int, dict[str, Any]]]
    recording: tuple[int, bytes, str]
    recording_dir: pathlib.Path


async def _wait_journey_log(engine: RunningEngine, event: str, **match: object) -> None:
    await wait_for_log(engine, event, 30.0, **match)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def supervised(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SupervisedCall]:
    tmp = tmp_path_factory.mktemp("supervised")
    recording_dir = tmp / "recordings"
    a1 = AgentSpec("a1", {"general": 2})
    s1 = AgentSpec("s1", {"supervising": 1})  # an agent no hotline queue offers calls to
    config = write_engine_config(tmp, [a1, s1], {"general": {"recording": "always"}},
                                 recording_dir=str(recording_dir))
    caller_file = write_wav(tmp / "caller-tone.wav", tone(CALLER_HZ, 2.0))
    async with running_engine(tmp / "engine", config) as engine:
        async with (
            baresip_agent(tmp, a1, engine.sip_port, says=tone(AGENT_HZ, 90.0)) as agent,
            baresip_agent(tmp, s1, engine.sip_port, says=tone(SUPERVISOR_HZ, 90.0)) as supervisor,
        ):
            await agent.expect(r"a1@.*200 OK")
            await supervisor.expect(r"s1@.*200 OK")
            caller: TestCaller = await caller_on(43300)
            responses: dict[str, tuple[int, dict[str, Any]]] = {}
            started: dict[str, float] = {}
            try:
                steps = [*TO_A_HUMAN, *[PlayFile(caller_file)] * 60, Pause(5.0)]
                task = asyncio.create_task(caller.call(engine.uri, steps, from_number="13700000777",
                                                       linger_s=0.0, max_duration_s=150.0))
                bridged = (await wait_for_log(engine, "call_bridged", 100.0))[0]
                call_id = bridged["call_id"]
                quoted = urllib.parse.quote(call_id, safe="")
                await until_agent_on_call(engine, "a1", call_id)
                await until_recorded(agent, 2.0)
                responses["pause"] = await asyncio.to_thread(post, engine, f"/api/calls/{quoted}/recording/pause")
                await asyncio.sleep(2.0)  # another process's call: real time passes for the pause
                responses["resume"] = await asyncio.to_thread(post, engine, f"/api/calls/{quoted}/recording/resume")
                await asyncio.sleep(2.0)
                for mode in ("listen", "whisper", "barge"):
                    responses[mode] = await asyncio.to_thread(
                        post, engine, f"/api/calls/{quoted}/supervise", {"mode": mode, "supervisor": "s1"})
                    if mode == "listen":
                        await wait_for_log(engine, "supervisor_joined", 30.0, supervisor="s1")
                    started[mode] = time.monotonic()
                    await asyncio.sleep(PHASE_S)
                responses["nobody"] = await asyncio.to_thread(
                    post, engine, "/api/calls/no-such-call/supervise", {"mode": "listen", "supervisor": "s1"})
                hung_up = time.monotonic()
                await hang_up(caller, call_id)
                async with asyncio.timeout(20):
                    report = await task
            finally:
                await caller.close()
            await supervisor.expect(r"terminated", 15.0)
            await agent.expect(r"terminated", 15.0)
            detail = await asyncio.to_thread(engine.call_detail, call_id)
            await wait_for_log(engine, "recording_stopped")
            recording = await asyncio.to_thread(get_bytes, engine, f"/api/calls/{quoted}/recording")
            marks = {mode: hung_up - at for mode, at in started.items()}
            yield SupervisedCall(engine, call_id, report, agent, supervisor, detail, marks, responses, recording,
                                 recording_dir)


def _phase(audio: NDArray[np.int16], call: SupervisedCall, mode: str) -> NDArray[np.int16]:
    """The middle of supervision phase `mode` in a stream that ended when the caller hung up."""
    begin = call.marks[mode]
    return back_from_end(audio, begin - 1.0, begin - PHASE_S + 1.0)


def test_the_api_accepts_pause_resume_and_each_supervision_mode(supervised: SupervisedCall) -> None:
    responses = supervised.responses
    assert responses["pause"][0] == 200 and responses["pause"][1]["paused"] is True
    assert responses["resume"][0] == 200 and responses["resume"][1]["paused"] is False
    for mode in ("listen", "whisper", "barge"):
        assert responses[mode][0] == 202, responses[mode]
    assert responses["nobody"][0] == 404


def test_the_recording_holds_the_caller_left_and_the_agent_right(supervised: SupervisedCall) -> None:
    status, data, content_type = supervised.recording
    assert status == 200 and content_type == "audio/wav"
    stereo = read_stereo(data)
    steps = {s["kind"]: s["data"] for s in supervised.detail["journey"] if s["kind"].startswith("recording_")}
    stopped = steps["recording_stopped"]
    assert pathlib.Path(stopped["path"]).is_relative_to(supervised.recording_dir)
    assert pathlib.Path(stopped["path"]).read_bytes() == data
    assert abs(stopped["duration_s"] - len(stereo) / RATE_HZ) < 0.05
    left, right = stereo[:, 0], stereo[:, 1]
    talk = slice(len(stereo) - int(9 * RATE_HZ), len(stereo) - int(1 * RATE_HZ))  # supervised, both talking
    assert heard_tones(left[talk]) == {CALLER_HZ}, tone_shares(left[talk])
    assert heard_tones(right[talk]) == {AGENT_HZ}, tone_shares(right[talk])


def test_pausing_writes_silence_and_keeps_the_pause(supervised: SupervisedCall) -> None:
    stereo = read_stereo(supervised.recording[1])
    steps = {s["kind"]: s["data"] for s in supervised.detail["journey"] if s["kind"].startswith("recording_")}
    assert {"recording_started", "recording_paused", "recording_resumed", "recording_stopped"} <= steps.keys()
    (paused_s, resumed_s), = steps["recording_stopped"]["pauses"]
    assert 1.5 < resumed_s - paused_s < 4.0
    quiet = stereo[int((paused_s + 0.1) * RATE_HZ) : int((resumed_s - 0.1) * RATE_HZ)]
    assert not quiet.any(), "audio was written while the recording was paused"
    before = stereo[: int(paused_s * RATE_HZ)]
    after = stereo[int(resumed_s * RATE_HZ) : int((resumed_s + 1.5) * RATE_HZ)]
    assert heard_tones(before[-RATE_HZ:, 0]) == {CALLER_HZ} and heard_tones(after[:, 0]) == {CALLER_HZ}


def test_a_listening_supervisor_hears_both_and_nobody_hears_them(supervised: SupervisedCall) -> None:
    assert heard_tones(_phase(supervised.supervisor.heard(), supervised, "listen")) == {CALLER_HZ, AGENT_HZ}
    assert heard_tones(_phase(supervised.agent.heard(), supervised, "listen")) == {CALLER_HZ}
    assert heard_tones(_phase(supervised.report.heard, supervised, "listen")) == {AGENT_HZ}


def test_a_whisper_reaches_the_agent_only(supervised: SupervisedCall) -> None:
    assert heard_tones(_phase(supervised.agent.heard(), supervised, "whisper")) == {CALLER_HZ, SUPERVISOR_HZ}
    assert heard_tones(_phase(supervised.report.heard, supervised, "whisper")) == {AGENT_HZ}
    assert heard_tones(_phase(supervised.supervisor.heard(), supervised, "whisper")) == {CALLER_HZ, AGENT_HZ}


def test_a_barge_is_heard_by_both(supervised: SupervisedCall) -> None:
    assert heard_tones(_phase(supervised.agent.heard(), supervised, "barge")) == {CALLER_HZ, SUPERVISOR_HZ}
    assert heard_tones(_phase(supervised.report.heard, supervised, "barge")) == {AGENT_HZ, SUPERVISOR_HZ}
    assert heard_tones(_phase(supervised.supervisor.heard(), supervised, "barge")) == {CALLER_HZ, AGENT_HZ}


def test_the_journey_shows_the_supervisor_joining_switching_and_leaving(supervised: SupervisedCall) -> None:
    steps = [(s["kind"], s["data"]) for s in supervised.detail["journey"] if s["kind"].startswith("supervisor_")]
    assert steps == [
        ("supervisor_joined", {"supervisor": "s1", "mode": "listen"}),
        ("supervisor_mode", {"supervisor": "s1", "mode": "whisper"}),
        ("supervisor_mode", {"supervisor": "s1", "mode": "barge"}),
        ("supervisor_left", {"supervisor": "s1"}),
    ]


# --- by feature code from the supervisor's own phone -------------------------------------------------


@dataclass
class BargedByCode:
    report: CallReport
    agent: BaresipAgent
    supervisor: BaresipAgent
    detail: dict[str, Any]
    since_s: float
    """Seconds before the caller hung up at which the supervisor had joined."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def barged_by_code(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BargedByCode]:
    """Supervisor s1 (agents.yaml `supervisor: true`) dials `*33a1` from their baresip while a1 talks to a caller."""
    tmp = tmp_path_factory.mktemp("by-code")
    a1 = AgentSpec("a1", {"general": 2})
    s1 = AgentSpec("s1", {"supervising": 1}, supervisor=True)
    config = write_engine_config(tmp, [a1, s1])
    caller_file = write_wav(tmp / "caller-tone.wav", tone(CALLER_HZ, 2.0))
    async with running_engine(tmp / "engine", config) as engine:
        async with (
            baresip_agent(tmp, a1, engine.sip_port, says=tone(AGENT_HZ, 90.0)) as agent,
            baresip_agent(tmp, s1, engine.sip_port, says=tone(SUPERVISOR_HZ, 90.0), console=True) as supervisor,
        ):
            await agent.expect(r"a1@.*200 OK")
            await supervisor.expect(r"s1@.*200 OK")
            caller: TestCaller = await caller_on(43500)
            try:
                steps = [*TO_A_HUMAN, *[PlayFile(caller_file)] * 40, Pause(5.0)]
                task = asyncio.create_task(caller.call(engine.uri, steps, from_number="13700000778",
                                                       linger_s=0.0, max_duration_s=120.0))
                bridged = (await wait_for_log(engine, "call_bridged", 100.0))[0]
                await until_agent_on_call(engine, "a1", bridged["call_id"])
                supervisor.command("/dial *33a1")
                await wait_for_log(engine, "supervisor_joined", 30.0, supervisor="s1", mode="barge")
                joined = time.monotonic()
                await asyncio.sleep(PHASE_S)  # a live call: the barge must last for its tones to be heard
                since_s = time.monotonic() - joined
                await hang_up(caller, bridged["call_id"])
                async with asyncio.timeout(20):
                    report = await task
            finally:
                await caller.close()
            await supervisor.expect(r"terminated", 15.0)
            detail = await asyncio.to_thread(engine.call_detail, bridged["call_id"])
            yield BargedByCode(report, agent, supervisor, detail, since_s)


def test_a_supervisor_barges_in_by_feature_code_and_both_hear_them(barged_by_code: BargedByCode) -> None:
    call = barged_by_code
    window = (call.since_s - 1.0, 1.0)
    assert heard_tones(back_from_end(call.report.heard, *window)) == {AGENT_HZ, SUPERVISOR_HZ}
    assert heard_tones(back_from_end(call.agent.heard(), *window)) == {CALLER_HZ, SUPERVISOR_HZ}
    assert heard_tones(back_from_end(call.supervisor.heard(), *window)) == {CALLER_HZ, AGENT_HZ}
    steps = [(s["kind"], s["data"]) for s in call.detail["journey"] if s["kind"].startswith("supervisor_")]
    assert steps == [("supervisor_joined", {"supervisor": "s1", "mode": "barge"}),
                     ("supervisor_left", {"supervisor": "s1"})]
