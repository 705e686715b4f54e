"""The `message` node: the caller leaves a voice message, which becomes a follow-up task.

Offered where no human can take the call now (a queue overflowed, night hours for a queue without night
service). The recording is transcribed by the caller's own recognizer (the call does it, with the flow's
intent phrases as a bias), handed to the engine's `MessageBox` with what self-service learned, and the
call's outcome becomes `callback`: the caller was not dropped, someone will call back.
"""

from __future__ import annotations

from ivr.call import CallEnded, CaptureEnd, CaptureSpec
from ivr.flow.errors import FlowRuntimeError
from ivr.flow.events import StepKind
from ivr.flow.messages import VoiceMessage
from ivr.flow.model import MessageNode, SurveyNode
from ivr.flow.runtime import CallRuntime
from ivr.journey import Outcome


def intent_phrases(rt: CallRuntime, languages: tuple[str, ...]) -> tuple[str, ...]:
    """The flow's intent phrases in `languages`: what a transcription of the caller's words is biased toward."""
    intents = rt.flow.spec.intents.values()
    return tuple(phrase for intent in intents for lang in languages for phrase in intent.phrases.get(lang, ()))


def message_spec(node: MessageNode, rt: CallRuntime) -> CaptureSpec:
    languages = tuple(dict.fromkeys((rt.dialect, *node.languages)))
    return CaptureSpec(
        beep=node.beep,
        max_length_s=node.max_length_s,
        end_keys=node.end_key,
        silence_s=node.silence_s,
        no_input_timeout_s=node.timeout_s,
        transcribe=languages,
        phrases=intent_phrases(rt, languages),
    )


async def survey_comment(node: SurveyNode, rt: CallRuntime, score: int) -> None:
    """A detractor says what went wrong: kept like a message (kind `survey`) for the queue they were in, so the
    team can call back and the voice of the customer reads it. Nothing is kept without a message box."""
    if rt.messages is None or node.comment_prompt is None:
        return
    await rt.play([node.comment_prompt])
    languages = (rt.dialect,)
    recording = await rt.call.capture(CaptureSpec(max_length_s=node.comment_max_s, transcribe=languages,
                                                phrases=intent_phrases(rt, languages)))
    stored = recording.ended_by is not CaptureEnd.NO_INPUT and len(recording.audio) > 0
    data: dict[str, object] = {"ended_by": recording.ended_by.value, "stored": stored, "survey_score": score}
    if stored:
        left = await rt.messages.leave(VoiceMessage(
            call_id=rt.record.call_id, caller=rt.record.caller, queue=rt.record.queue or rt.flow.error_queue or "",
            dialect=rt.dialect, at=rt.clock.wall(), recording=recording, context=rt.agent_context(), kind="survey",
            survey_score=score,
        ))
        data |= {"message_id": left.message_id, "follow_up": left.follow_up}
    rt.emit(StepKind.MESSAGE, data)


async def run_message(node: MessageNode, rt: CallRuntime) -> str | None:
    if rt.messages is None:
        raise FlowRuntimeError(f"node '{node.id}' takes voice messages, but this engine stores none")
    await rt.play([node.prompt])
    recording = await rt.call.capture(message_spec(node, rt))
    heard = recording.transcript
    data = {"ended_by": recording.ended_by.value, "duration_s": round(recording.duration_s, 2)}
    if recording.ended_by is CaptureEnd.NO_INPUT or not len(recording.audio):
        rt.emit(StepKind.MESSAGE, {**data, "stored": False})
        if recording.ended_by is CaptureEnd.HANGUP:
            raise CallEnded(f"caller of {rt.record.call_id} hung up before leaving a message")
        return node.empty or node.next
    left = await rt.messages.leave(
        VoiceMessage(
            call_id=rt.record.call_id,
            caller=rt.record.caller,
            queue=node.queue,
            dialect=rt.dialect,
            at=rt.clock.wall(),
            recording=recording,
            campaign=node.campaign,
            context=rt.agent_context(),
        )
    )
    rt.emit(
        StepKind.MESSAGE,
        {**data, "stored": True, "message_id": left.message_id, "follow_up": left.follow_up,
         "transcript": heard.text if heard else ""},
    )
    rt.record.queue = rt.record.queue or node.queue
    rt.finish(Outcome.CALLBACK)
    rt.set_var("message_id", left.message_id)
    if recording.ended_by is CaptureEnd.HANGUP:  # kept; nobody is left to thank
        raise CallEnded(f"caller of {rt.record.call_id} hung up after leaving a message")
    if node.thanks is not None:
        await rt.play([node.thanks])
    return node.next
