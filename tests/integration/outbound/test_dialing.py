"""Outbound dialling with real peers: SIPp callees that answer, ring out, are busy, decline or fail,
retries at the configured times, a paused campaign, and the revisit flow end to end by keys and by speech."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import urllib.request

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.cli import main
from ivr.engine.outbound import OutboundCalls
from ivr.journey import Direction
from ivr.media import load_telephony
from ivr.outbound.model import Result
from ivr.outbound.state import Status
from ivr.outbound.targets import Target
from ivr.store import CallQuery
from ivr.testing.caller import AwaitPrompt, Keys, Say
from ivr.testing.sippeer import read_message_log
from ivr.web import client_token
from ivr.web.access import bearer_headers
from tests.integration.outbound.conftest import (
    Callee,
    campaign_yaml,
    needs_sipp,
    needs_tts,
    outbound_engine,
    sipp_callee,
)

pytestmark = [pytest.mark.integration]


def add(outbound: OutboundCalls, campaign: str, *numbers: str, **variables: str) -> None:
    targets = [Target(f"t{n}", n, {"name": "测试", **variables}) for n in numbers]
    outbound.scheduler.add_targets(campaign, targets, dt.datetime.now(dt.UTC))
    outbound.wake()


def recorded(path: pathlib.Path) -> NDArray[np.int16] | None:
    """A recording's audio (the left channel), None when there is no such file."""
    return load_telephony(path) if path.is_file() else None


@needs_sipp
async def test_each_callee_gets_its_result(tmp_path: pathlib.Path) -> None:
    kinds = {
        "answer": ("uas_answer.xml", {}),
        "ringout": ("uas_ring_out.xml", {}),
        "busy": ("uas_status.xml", {"status": "486", "reason": "Busy Here"}),
        "decline": ("uas_status.xml", {"status": "603", "reason": "Decline"}),
        "fail": ("uas_status.xml", {"status": "503", "reason": "Service Unavailable"}),
    }
    async with (
        sipp_callee(kinds["answer"][0], tmp_path, **kinds["answer"][1]) as (answer_port, answer_task),
        sipp_callee(kinds["ringout"][0], tmp_path) as (ring_port, ring_task),
        sipp_callee(kinds["busy"][0], tmp_path, **kinds["busy"][1]) as (busy_port, busy_task),
        sipp_callee(kinds["decline"][0], tmp_path, **kinds["decline"][1]) as (decline_port, decline_task),
        sipp_callee(kinds["fail"][0], tmp_path, **kinds["fail"][1]) as (fail_port, fail_task),
    ):
        campaigns = {
            "answer": campaign_yaml("answer", answer_port),
            "ringout": campaign_yaml("ringout", ring_port),
            "busy": campaign_yaml("busy", busy_port),
            "decline": campaign_yaml("decline", decline_port),
            "fail": campaign_yaml("fail", fail_port),
        }
        async with outbound_engine(tmp_path, campaigns) as rig:
            for cid in campaigns:
                add(rig.outbound, cid, "13800000001")
            await rig.wait_ended(5)
            results = {dial.campaign: (end.result, end.result_code, end.sip_status) for dial, end in rig.outbound.ended}
            assert rig.engine.store.flush(5)
            records = rig.engine.store.list_calls(CallQuery(direction=Direction.OUTBOUND)).records
        for task in (answer_task, ring_task, busy_task, decline_task, fail_task):
            outcome = await asyncio.wait_for(task, 15)
            assert outcome.returncode == 0, outcome.explain()
    assert results == {
        "answer": (Result.ANSWERED, "reached", 200),
        "ringout": (Result.NO_ANSWER, None, 408),
        "busy": (Result.BUSY, None, 486),
        "decline": (Result.REJECTED, None, 603),
        "fail": (Result.FAILED, None, 503),
    }
    # Every attempt is an outbound call record: the answered one by its flow, the others with their result.
    by_campaign = {r.variables["campaign"]: r for r in records}
    assert by_campaign["answer"].flow_id == "reach" and by_campaign["answer"].variables["result_code"] == "reached"
    assert {c: (r.variables.get("result"), r.variables.get("sip_status")) for c, r in by_campaign.items()
            if c != "answer"} == {"ringout": ("no_answer", "408"), "busy": ("busy", "486"),
                                   "decline": ("rejected", "603"), "fail": ("failed", "503")}


@needs_sipp
async def test_busy_is_retried_after_the_configured_delay(tmp_path: pathlib.Path) -> None:
    retry = "retry:\n  busy: {delay_s: 2, max_attempts: 3}\n"
    async with sipp_callee("uas_status.xml", tmp_path, calls=3, status="486", reason="Busy Here") as (port, task):
        async with outbound_engine(tmp_path, {"busy": campaign_yaml("busy", port, extra=retry)}) as rig:
            add(rig.outbound, "busy", "13800000002")
            await rig.wait_ended(3, timeout_s=30)
            state = rig.outbound.scheduler.target("busy", "t13800000002")
            attempts = rig.outbound.scheduler.store.attempts("busy")
        outcome = await asyncio.wait_for(task, 15)
        assert outcome.returncode == 0, outcome.explain()
    assert state is not None and state.status is Status.DONE and state.attempts == 3
    assert [a.result for a in attempts] == [Result.BUSY] * 3
    gaps = [(b.started_at - a.ended_at).total_seconds()
            for a, b in zip(attempts, attempts[1:], strict=False) if a.ended_at]
    assert len(gaps) == 2 and all(1.9 <= g <= 3.5 for g in gaps), gaps
    log = await asyncio.to_thread(lambda: read_message_log(next(tmp_path.glob("*uas_status-messages.log"))))
    invites = [m for m in log
               if m.direction == "received" and m.text.startswith("INVITE")]
    assert len(invites) == 3 and all("X-IVR-Campaign: busy" in m.text for m in invites)


@needs_sipp
async def test_a_callee_who_hangs_up_before_the_result_is_called_again(tmp_path: pathlib.Path) -> None:
    """Answered and gone half a second later (during the machine detection): not served, so not done. The
    `incomplete` rule calls them again; each attempt is a record with result `incomplete`."""
    retry = "retry:\n  incomplete: {delay_s: 1, max_attempts: 2}\n"
    async with sipp_callee("uas_answer_hang_up.xml", tmp_path, calls=2) as (port, task):
        campaigns = {"gone": campaign_yaml("gone", port, extra=retry, amd=True)}
        async with outbound_engine(tmp_path, campaigns) as rig:
            add(rig.outbound, "gone", "13800000004")
            await rig.wait_ended(2)
            state = rig.outbound.scheduler.target("gone", "t13800000004")
            attempts = rig.outbound.scheduler.store.attempts("gone")
            assert rig.engine.store.flush(5)
            records = rig.engine.store.list_calls(CallQuery(direction=Direction.OUTBOUND)).records
        outcome = await asyncio.wait_for(task, 15)
        assert outcome.returncode == 0, outcome.explain()
    ends = [(e.result, e.result_code, e.sip_status) for _, e in rig.outbound.ended]
    assert ends == [(Result.INCOMPLETE, None, 200)] * 2
    assert state is not None and state.status is Status.DONE and state.attempts == 2
    assert [a.result for a in attempts] == [Result.INCOMPLETE] * 2
    assert sorted(r.variables.get("result", "") for r in records) == ["incomplete"] * 2


@needs_sipp
async def test_a_paused_campaign_dials_nothing(tmp_path: pathlib.Path) -> None:
    async with sipp_callee("uas_answer.xml", tmp_path, timeout_s=20) as (port, task):
        async with outbound_engine(tmp_path, {"quiet": campaign_yaml("quiet", port)}, paused=["quiet"]) as rig:
            add(rig.outbound, "quiet", "13800000003")
            await asyncio.sleep(2.0)
            assert rig.outbound.ended == [] and rig.outbound.scheduler.store.attempts("quiet") == []
            rig.outbound.scheduler.resume("quiet")
            rig.outbound.wake()
            await rig.wait_ended(1)
        outcome = await asyncio.wait_for(task, 15)
        assert outcome.returncode == 0, outcome.explain()
    assert rig.outbound.ended[0][1].result is Result.ANSWERED


@needs_tts
async def test_revisit_completes_by_keys_and_by_speech(tmp_path: pathlib.Path) -> None:
    """Two customers of one campaign at once: a Mandarin one keys the ID and presses 1, an English one keys
    the ID and says "yes" (English is heard by the built-in recognizer; Mandarin consent by speech needs a
    Chinese Vosk model in `asr_models`). The AMD hears a person each time, both visits end
    confirmed and the campaign counts both as completed without a human."""
    by_keys = [Say("喂？"), AwaitPrompt(timeout_s=20), Keys("1234"), AwaitPrompt(timeout_s=70, quiet_s=2.5),
               Keys("1")]
    by_speech = [Say("hello?"), AwaitPrompt(timeout_s=20), Keys("1234"), AwaitPrompt(timeout_s=70, quiet_s=2.5),
                 Say("yes")]
    callee = Callee(by_number={"13800000001": by_keys, "13800000002": by_speech})
    await callee.start()
    try:
        campaign = campaign_yaml("revisit", callee.port, flow="revisit", amd=True, extra="record_consent: true\n")
        async with outbound_engine(tmp_path, {"revisit": campaign}, recording_dir=tmp_path / "recordings") as rig:
            add(rig.outbound, "revisit", "13800000001", name="王芳", id_last4="1234", product="安康终身寿险",
                policy_number="P2026-1001", premium="3600")
            add(rig.outbound, "revisit", "13800000002", name="Li Ming", id_last4="1234", product="Ankang Life",
                policy_number="P2026-1002", premium="3600", dialect="en")
            await rig.wait_ended(2, timeout_s=100)
            ends = {dial.target.number: end for dial, end in rig.outbound.ended}
            progress = rig.outbound.scheduler.progress("revisit")
            assert rig.engine.store.flush(5)
            records = rig.engine.store.list_calls(CallQuery(direction=Direction.OUTBOUND)).records
    finally:
        await callee.close()
    for number, end in ends.items():
        # The callee's own failures first: a long timeline is cut short in pytest's message (twice the first callee
        # hung up three or four seconds in at the start of a full run, and the cut-off timeline hid why).
        failed_first = sorted(callee.timeline, key=lambda note: note[1] != "failed")
        why = "\n".join(f"{at} {what} {detail}" for at, what, detail in failed_first)
        assert end.amd is not None and end.amd.verdict.value == "human", f"{number} {end}\n{why}"
        assert (end.result, end.result_code) == (Result.ANSWERED, "confirmed"), f"{number} {end}\n{why}"
    assert progress.completed == 2 and progress.completion_rate == 1.0 and progress.by_code == {"confirmed": 2}
    # The consent is recorded (the callee's side, from the flow's start) and the record says where: the
    # spoken "yes" is in it; the keyed one is silence (its keys are in the journey). Only the second half is
    # judged: the keyed callee's opening "喂？" may run into the recording's first seconds when the machine is
    # busy (the flow starts as soon as the AMD hears a person), the answer comes after 30 s of facts.
    assert sorted(r.caller for r in records) == ["13800000001", "13800000002"]
    for record in records:
        assert record.variables["result_code"] == "confirmed"
        consent = pathlib.Path(record.variables["consent_recording"])
        audio = recorded(consent)
        assert consent.name.endswith("-consent.wav") and audio is not None, record.variables
        assert len(audio) > 8000 * 30, len(audio)  # the whole flow: greeting, facts, risk, question, answer
        answer_part = np.abs(audio[len(audio) // 2 :])
        spoke = int(answer_part.max()) > 3000
        assert spoke == (record.caller == "13800000002"), (record.caller, int(answer_part.max()))


@needs_tts
async def test_a_voicemail_greeting_is_a_machine_and_retried(tmp_path: pathlib.Path) -> None:
    greeting = "您好，我现在不方便接听电话，请在提示音后留言，谢谢。"
    callee = Callee([Say(greeting)])
    await callee.start()
    try:
        extra = "retry:\n  machine: {delay_s: 600, max_attempts: 2}\n"
        async with outbound_engine(tmp_path, {"vm": campaign_yaml("vm", callee.port, amd=True, extra=extra)}) as rig:
            add(rig.outbound, "vm", "13800000004")
            await rig.wait_ended(1, timeout_s=30)
            _dial, end = rig.outbound.ended[0]
            state = rig.outbound.scheduler.target("vm", "t13800000004")
    finally:
        await callee.close()
    assert end.result is Result.MACHINE and end.amd is not None
    assert state is not None and state.status is Status.PENDING and state.attempts == 1


@needs_sipp
async def test_a_restart_resumes_and_the_do_not_call_list_holds(tmp_path: pathlib.Path) -> None:
    """Stop the engine with calls up, start a new one on the same state: every target ends done, no
    (target, attempt) is dialled twice, the SIPp callee saw exactly the attempts recorded, and the
    number on the do-not-call list was never dialled."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "dnc.txt").write_text("13800000005\n", encoding="utf-8")
    numbers = [f"1380000000{i}" for i in range(6)]
    async with sipp_callee("uas_answer.xml", tmp_path, calls=20, timeout_s=40) as (port, _task):
        campaign = campaign_yaml("resume", port, extra="do_not_call: dnc.txt\n").replace(
            "calls_per_s: 5", "calls_per_s: 2")
        async with outbound_engine(tmp_path, {"resume": campaign}) as rig:
            add(rig.outbound, "resume", *numbers)
            await rig.wait_ended(2)
            first_run = len(rig.outbound.ended)
        async with outbound_engine(tmp_path, {"resume": campaign}) as rig:
            rig.outbound.wake()
            async with asyncio.timeout(30):
                while any(s.status is not Status.DONE  # noqa: ASYNC110 - polling the state file
                          for s in rig.outbound.scheduler.store.targets("resume")):
                    await asyncio.sleep(0.1)
            states = {s.target.number: s for s in rig.outbound.scheduler.store.targets("resume")}
            attempts = rig.outbound.scheduler.store.attempts("resume")
    log = await asyncio.to_thread(lambda: read_message_log(next(tmp_path.glob("*uas_answer-messages.log"))))
    invites = [m for m in log if m.direction == "received" and m.text.startswith("INVITE")]
    assert first_run >= 2
    keys = [(a.target_id, a.attempt) for a in attempts]
    assert len(keys) == len(set(keys)), keys
    assert len(invites) == len(attempts), "every attempt recorded was dialled once, none dialled unrecorded"
    assert states["13800000005"].result_code == "do_not_call" and states["13800000005"].attempts == 0
    assert all(s.status is Status.DONE for s in states.values())
    assert {n for n, s in states.items() if s.result_code == "reached"} == set(numbers) - {"13800000005"}
    assert not any("13800000005" in m.text.split("\r\n", 1)[0] for m in invites)


@needs_sipp
async def test_api_and_cli_drive_a_live_campaign(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """POST /api/outbound/calls places a call; `ivr campaign pause|resume|status` work on the engine."""
    async with sipp_callee("uas_answer.xml", tmp_path, calls=2) as (port, task):
        async with outbound_engine(tmp_path, {"pay": campaign_yaml("pay", port)}) as rig:
            api = f"http://127.0.0.1:{rig.engine.config.http_port}"
            headers = {**bearer_headers(client_token()), "Content-Type": "application/json"}

            def call(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
                data = json.dumps(body).encode() if body is not None else None
                request = urllib.request.Request(api + path, method=method, headers=headers, data=data)
                with urllib.request.urlopen(request, timeout=5) as response:
                    result: dict[str, object] = json.loads(response.read())
                    return result

            made = await asyncio.to_thread(call, "POST", "/api/outbound/calls",
                                           {"campaign": "pay", "number": "13800000007", "id": "pay-1",
                                            "variables": {"amount": 3600}})
            assert made["status"] == "pending"
            await rig.wait_ended(1)
            done = await asyncio.to_thread(call, "GET", "/api/outbound/calls/pay-1")
            assert (done["status"], done["result_code"], done["attempts"]) == ("done", "reached", 1)

            assert await asyncio.to_thread(main, ["campaign", "pause", "pay", "--api", api]) == 0
            await asyncio.to_thread(call, "POST", "/api/outbound/calls",
                                    {"campaign": "pay", "number": "13800000008", "id": "pay-2"})
            await asyncio.sleep(1.5)
            waiting = await asyncio.to_thread(call, "GET", "/api/outbound/calls/pay-2")
            assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
            assert await asyncio.to_thread(main, ["campaign", "resume", "pay", "--api", api]) == 0
            await rig.wait_ended(2)
            capsys.readouterr()
            assert await asyncio.to_thread(main, ["campaign", "status", "--api", api]) == 0
        outcome = await asyncio.wait_for(task, 15)
        assert outcome.returncode == 0, outcome.explain()
    assert capsys.readouterr().out.strip() == (
        "pay: dialling; 2 targets, 2 attempted, 0 completed without a human (0.0%); results: reached 2")


@needs_sipp
async def test_a_draining_engine_dials_no_more_and_finishes_its_calls(tmp_path: pathlib.Path) -> None:
    """Drain (as SIGTERM does: OPTIONS and /readyz answer 503) while a campaign is dialling: the calls up
    end normally, nothing more is dialled, and the targets not reached stay pending for the next start."""
    numbers = [f"1380000001{i}" for i in range(8)]
    async with sipp_callee("uas_answer.xml", tmp_path, calls=8, timeout_s=20) as (port, _task):
        campaign = campaign_yaml("drain", port).replace("max_concurrent: 5", "max_concurrent: 2").replace(
            "calls_per_s: 5", "calls_per_s: 2")
        async with outbound_engine(tmp_path, {"drain": campaign}) as rig:
            add(rig.outbound, "drain", *numbers)
            async with asyncio.timeout(10):
                while not rig.outbound.in_progress:  # noqa: ASYNC110 - the first attempt placed
                    await asyncio.sleep(0.02)
            await rig.engine.drain()
            assert rig.engine.ua.draining and not rig.outbound.in_progress
            dialled = len(rig.outbound.ended)
            rig.outbound.wake()
            await asyncio.sleep(1.5)  # two pacing slots: a dialling engine would have placed more calls
            states = rig.outbound.scheduler.store.targets("drain")
            attempts = rig.outbound.scheduler.store.attempts("drain")
    log = await asyncio.to_thread(lambda: read_message_log(next(tmp_path.glob("*uas_answer-messages.log"))))
    invites = [m for m in log if m.direction == "received" and m.text.startswith("INVITE")]
    assert 1 <= dialled < len(numbers) and len(rig.outbound.ended) == dialled
    assert [(e.result, e.result_code) for _, e in rig.outbound.ended] == [(Result.ANSWERED, "reached")] * dialled
    assert len(attempts) == len(invites) == dialled
    assert sum(s.status is Status.PENDING and s.attempts == 0 for s in states) == len(numbers) - dialled
