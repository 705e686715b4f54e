"""Answering-machine detection against a real softphone: baresip auto-answers and plays a WAV, a person's
"喂？" then silence, or a voicemail greeting ending in a beep. The person gets the campaign's flow; on the
machine the campaign leaves its message after the beep. Both attempts are outbound call records."""

from __future__ import annotations

import datetime as dt
import pathlib

import numpy as np
import pytest

from ivr.journey import Direction
from ivr.media.tones import beep, silence
from ivr.outbound.model import Result
from ivr.outbound.scheduler import MESSAGE_LEFT
from ivr.outbound.targets import Target
from ivr.store import CallQuery
from ivr.testing.voices import speak
from tests.integration.outbound.conftest import campaign_yaml, needs_tts, outbound_engine
from tests.integration.sip.sip_peers import HOST, baresip, needs_baresip

pytestmark = [pytest.mark.integration]

MESSAGE_FLOW = """\
id: leave_message
dialects: [cmn]
queues: [general]
prompts:
  message: {cmn: 您好，这里是安康人寿，请您回电，谢谢。}
nodes:
  say: {type: hangup, prompt: message}
"""
GREETING = "您好，我现在不方便接听电话，请在提示音后留言，谢谢。"
BEEP_GAP_S = 0.4


def baresip_campaign(cid: str, port: int, **options: str) -> str:
    """baresip answers only its account's user (404 for any other): the number rides in a URI parameter."""
    text = campaign_yaml(cid, port, amd=True, **options)
    return text.replace(f'"sip:{{number}}@{HOST}:{port}"', f'"sip:baresip@{HOST}:{port};callee={{number}}"')


def wav_bytes(*parts: np.ndarray) -> bytes:
    return np.concatenate(parts).astype("<i2").tobytes()


@needs_baresip
@needs_tts
async def test_baresip_person_gets_the_flow_and_its_voicemail_gets_the_message_after_the_beep(
    tmp_path: pathlib.Path,
) -> None:
    person = wav_bytes(speak("喂？"), silence(15.0))
    greeting = speak(GREETING)
    machine = wav_bytes(greeting, silence(BEEP_GAP_S), beep(1000.0, 0.5), silence(15.0))
    beep_at_ms = 1000 * (len(greeting) / 8000 + BEEP_GAP_S)
    (tmp_path / "person").mkdir()
    (tmp_path / "machine").mkdir()
    async with (
        baresip(tmp_path / "person", auto_answer=True, say=person, quit_after_s=40) as (person_port, _),
        baresip(tmp_path / "machine", auto_answer=True, say=machine, quit_after_s=40) as (machine_port, _),
    ):
        campaigns = {
            "person": baresip_campaign("person", person_port),
            "machine": baresip_campaign("machine", machine_port,
                                        extra="on_machine: leave_message\nmachine_flow: leave_message\n"),
        }
        async with outbound_engine(tmp_path, campaigns, extra_flows={"leave_message": MESSAGE_FLOW}) as rig:
            for cid in campaigns:
                rig.outbound.scheduler.add_targets(cid, [Target("t1", "13800000001")], dt.datetime.now(dt.UTC))
            rig.outbound.wake()
            await rig.wait_ended(2, timeout_s=40)
            ends = {dial.campaign: end for dial, end in rig.outbound.ended}
            machine_state = rig.outbound.scheduler.target("machine", "t1")
            assert rig.engine.store.flush(5)
            records = rig.engine.store.list_calls(CallQuery(direction=Direction.OUTBOUND)).records
    assert ends["person"].amd is not None and ends["person"].amd.verdict.value == "human", ends["person"]
    assert (ends["person"].result, ends["person"].result_code) == (Result.ANSWERED, "reached")
    machine_end = ends["machine"]
    assert machine_end.amd is not None and machine_end.amd.verdict.value == "machine", machine_end
    assert machine_end.result is Result.MACHINE
    assert machine_end.beep_at_ms is not None and abs(machine_end.beep_at_ms - beep_at_ms) < 400, (
        machine_end.beep_at_ms, beep_at_ms)
    assert machine_state is not None and machine_state.result_code == MESSAGE_LEFT
    assert sorted(r.flow_id for r in records) == ["leave_message", "reach"]
    assert all(r.direction is Direction.OUTBOUND for r in records)
