"""The `record_prompts` node: the prompt-recording line, driven by keys only.

PIN (never written to the journey: only whether it was accepted) → dialect by number → a prompt by number
(or # for the next one still to record) → record after the beep until # or silence → hear it back →
1 keep, 2 record again, 3 hear again. A kept take is saved through the engine's `Studio` and the line
offers the next prompt. Silence at any menu ends the session (`next`); a hang-up mid-take keeps nothing
(a take nobody heard back is not a recording anyone approved).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ivr.call import CallEnded, CallerAudio, CaptureEnd, CaptureSpec, DigitsInput, ListenSpec
from ivr.flow.errors import FlowRuntimeError
from ivr.flow.events import StepKind
from ivr.flow.model import RecordPromptsNode
from ivr.flow.nodes.collect import is_digits
from ivr.flow.runtime import CallRuntime
from ivr.flow.studio import Studio

MAX_MENU_TRIES = 3
"""A menu answered wrongly (or not at all) this many times ends the session."""
KEEP, AGAIN, REPLAY = "1", "2", "3"


async def _keys(
    rt: CallRuntime, node: RecordPromptsNode, prompt_id: str, max_digits: int, extra: Mapping[str, str] | None = None
) -> str | None:
    """Play the prompt and take keys (ended by #); None when the caller keyed nothing."""
    spec = ListenSpec(speech=False, languages=(rt.dialect,), max_digits=max_digits, min_digits=0, terminator="#",
                      no_input_timeout_s=node.timeout_s, inter_digit_timeout_s=5.0)
    result = await rt.call.listen(spec, [rt.prompt(prompt_id, dict(extra or {}))])
    if not isinstance(result, DigitsInput):
        return None
    keyed = result.digits.rstrip("#")
    if not keyed and not (result.terminated or result.digits.endswith("#")):
        return None
    return keyed  # "" when only # was pressed


async def _say(rt: CallRuntime, prompt_id: str, extra: Mapping[str, str]) -> None:
    await rt.call.play([rt.prompt(prompt_id, dict(extra))])
    rt.emit(StepKind.PROMPT_PLAYED, {"prompt": prompt_id, "dialect": rt.dialect})


async def _sign_in(rt: CallRuntime, node: RecordPromptsNode, studio: Studio) -> bool:
    for _ in range(node.pin_tries):
        pin = await _keys(rt, node, node.pin_prompt, 12)
        accepted = bool(pin) and await asyncio.to_thread(studio.check_pin, pin or "")
        if accepted:
            rt.emit(StepKind.INPUT, {"pin": "accepted"})
            return True
        rt.emit(StepKind.NO_MATCH, {"pin": "refused"})
        await rt.play([node.bad_pin_prompt])
    rt.breakpoint(StepKind.RETRIES_EXHAUSTED, "pin_refused")
    return False


async def _pick(rt: CallRuntime, node: RecordPromptsNode, prompt_id: str, count: int, extra: Mapping[str, str],
                *, blank: int | None = None) -> int | None:
    """A number from 1 to `count` (0-based index back); `blank` is the index # alone picks."""
    for _ in range(MAX_MENU_TRIES):
        keyed = await _keys(rt, node, prompt_id, 3, extra)
        if keyed is None:
            return None
        if keyed == "" and blank is not None:
            return blank
        if is_digits(keyed) and 1 <= int(keyed) <= count:
            return int(keyed) - 1
        rt.emit(StepKind.NO_MATCH, {"keys": keyed, "choices": count})
    return None


async def _take(rt: CallRuntime, node: RecordPromptsNode, text: str) -> CallerAudio | None:
    """Record until the staff member keeps a take (returned) or gives up (None)."""
    for _ in range(MAX_MENU_TRIES):
        await _say(rt, node.record_prompt, {"text": text})
        take = await rt.call.capture(CaptureSpec(beep=True, max_length_s=node.max_length_s, end_keys="#",
                                               silence_s=node.silence_s, no_input_timeout_s=node.timeout_s))
        if take.ended_by is CaptureEnd.HANGUP:
            raise CallEnded("the prompt-recording line hung up before keeping the take")
        if not len(take.audio):
            continue
        for _ in range(MAX_MENU_TRIES):
            await rt.call.play_audio(take.audio)
            answer = await _keys(rt, node, node.review_prompt, 1)
            if answer == KEEP:
                return take
            if answer == AGAIN:
                break
            if answer is None:
                return None
        else:
            return None
    return None


async def run_record_prompts(node: RecordPromptsNode, rt: CallRuntime) -> str | None:
    studio = rt.studio
    if studio is None:
        raise FlowRuntimeError(f"node '{node.id}' records prompts, but this engine has no prompt studio")
    if not await _sign_in(rt, node, studio):
        return node.next
    codes = studio.dialect_codes()
    choices = ", ".join(f"{i}: {code}" for i, code in enumerate(codes, start=1))
    index = await _pick(rt, node, node.dialect_prompt, len(codes), {"choices": choices})
    if index is None:
        return node.next
    dialect = codes[index]
    rt.emit(StepKind.INPUT, {"record_dialect": dialect})
    while True:
        todo = await asyncio.to_thread(studio.to_record, dialect)
        if not todo:
            await _say(rt, node.done_prompt, {"dialect": dialect})
            return node.next
        first_id, first_text = todo[0]
        extra = {"dialect": dialect, "count": str(len(todo)), "prompt_id": first_id, "text": first_text}
        index = await _pick(rt, node, node.choose_prompt, len(todo), extra, blank=0)
        if index is None:
            return node.next
        prompt_id, text = todo[index]
        take = await _take(rt, node, text)
        if take is None:
            return node.next
        path = await asyncio.to_thread(studio.save, dialect, prompt_id, take.audio)
        rt.emit(StepKind.PROMPT_RECORDED, {"dialect": dialect, "prompt": prompt_id, "path": str(path),
                                           "duration_s": round(take.duration_s, 2)})
        await rt.play([node.saved_prompt])
