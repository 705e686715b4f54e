"""The `message` node over a simulated call: recorded, transcribed, handed to the box, outcome callback."""

from __future__ import annotations

import pytest

from ivr.call import CaptureEnd
from ivr.flow import Flow, load_text
from ivr.flow.events import StepKind
from ivr.flow.messages import MemoryMessageBox
from ivr.journey import Outcome
from ivr.testing import Turn
from ivr.testing.flowsim import simulate

FLOW = """
id: msg
numbers: ["95519"]
dialects: [cmn, en]
queues: [general]
intents:
  claim:
    phrases: {cmn: [我要报案], en: [report a claim]}
prompts:
  leave: {cmn: 请在提示音后留言，按井号键结束, en: Please leave a message after the tone}
  thanks: {cmn: 谢谢，我们会尽快回电, en: Thank you}
  bye: {cmn: 再见, en: Goodbye}
  nothing: {cmn: 没有收到留言, en: No message}
nodes:
  leave_message:
    type: message
    prompt: leave
    queue: general
    thanks: thanks
    languages: [en]
    max_length_s: 90
    empty: no_message
    next: bye
  no_message:
    type: hangup
    prompt: nothing
  bye:
    type: hangup
    prompt: bye
"""


@pytest.fixture
def flow() -> Flow:
    result = load_text(FLOW, "msg.yaml", classifier_factory=None)
    assert result.flow is not None, result.problems
    return result.flow


async def test_a_message_is_stored_with_its_transcript_and_becomes_a_callback(flow: Flow) -> None:
    box = MemoryMessageBox()
    sim = await simulate(flow, [Turn.message("我的车被撞了，请回电")], backend="http://stub", messages=box)
    (left,) = box.messages
    assert left.queue == "general" and left.caller == "13800138000" and left.dialect == "cmn"
    assert left.recording.ended_by is CaptureEnd.TERMINATOR and left.recording.duration_s > 0
    assert left.recording.transcript is not None and left.recording.transcript.text == "我的车被撞了，请回电"
    assert left.context["caller"] == "13800138000"
    spec = sim.call.records[0]
    assert spec.transcribe == ("cmn", "en") and spec.max_length_s == 90 and spec.end_keys == "#"
    assert "我要报案" in spec.phrases and "report a claim" in spec.phrases
    assert sim.record.outcome is Outcome.CALLBACK and sim.record.variables["message_id"] == "1"
    assert sim.call.prompt_ids == ["leave", "thanks", "bye"]
    (step,) = [e for e in sim.events if e.kind == StepKind.MESSAGE.value]
    assert step.data["stored"] is True and step.data["follow_up"] == "queue:general"


async def test_silence_leaves_no_message(flow: Flow) -> None:
    box = MemoryMessageBox()
    sim = await simulate(flow, [Turn.silence()], backend="http://stub", messages=box)
    assert box.messages == [] and sim.call.prompt_ids == ["leave", "nothing"]
    assert sim.record.outcome is Outcome.SELF_SERVED


async def test_a_caller_who_hangs_up_after_speaking_keeps_the_message(flow: Flow) -> None:
    box = MemoryMessageBox()
    sim = await simulate(flow, [Turn.message("please call me back", ends=CaptureEnd.HANGUP)],
                         backend="http://stub", messages=box)
    assert len(box.messages) == 1 and box.messages[0].recording.transcript is not None
    assert box.messages[0].recording.transcript.language == "en"
    assert sim.record.outcome is Outcome.CALLBACK
    assert sim.call.prompt_ids == ["leave"]


async def test_an_engine_without_a_box_sends_the_caller_to_a_human(flow: Flow) -> None:
    from ivr.clock import FakeClock
    from ivr.flow import Interpreter
    from ivr.journey import MemoryJourneySink
    from ivr.testing import SimCall

    call = SimCall(script=[Turn.message("hello")])
    record = await Interpreter(sink=MemoryJourneySink(), clock=FakeClock()).run(flow, call)
    assert record.breakpoint_node == "leave_message" and record.queue == "general"  # a human, not dropped


async def test_a_detractor_comment_after_the_survey_is_kept_as_a_survey_message(hotline: Flow) -> None:
    box = MemoryMessageBox()
    script = [Turn.say("保单借款怎么办理"), Turn.keys("2"), Turn.keys("2"), Turn.keys("3#"),
              Turn.message("等了太久，说明也听不懂")]
    sim = await simulate(hotline, script, backend="http://stub", messages=box)
    (comment,) = box.messages
    assert (comment.kind, comment.survey_score, comment.queue) == ("survey", 3, "general")
    assert comment.recording.transcript is not None and comment.recording.transcript.text == "等了太久，说明也听不懂"
    assert sim.record.survey_score == 3 and sim.record.outcome is Outcome.SELF_SERVED
    assert sim.call.prompt_ids[-3:] == ["survey_comment", "survey_thanks", "goodbye"]


async def test_promoters_and_passives_are_not_asked_for_a_comment(hotline: Flow) -> None:
    box = MemoryMessageBox()
    sim = await simulate(hotline, [Turn.say("保单借款怎么办理"), Turn.keys("2"), Turn.keys("2"), Turn.keys("7#")],
                         backend="http://stub", messages=box)
    assert box.messages == [] and "survey_comment" not in sim.call.prompt_ids
