"""Nodes that take a value from the caller: `collect` (digits with a check digit) and `survey` (NPS)."""

from __future__ import annotations

from ivr.call import CallerInput, DigitsInput, ListenSpec, SpeechInput
from ivr.flow.events import StepKind
from ivr.flow.model import Checksum, CollectNode, SurveyNode
from ivr.flow.nodes.listening import Goto, listen_loop, spoken_digits, spoken_score
from ivr.flow.nodes.message import survey_comment
from ivr.flow.runtime import CallRuntime


def is_digits(text: str) -> bool:
    """ASCII 0-9 only ("²" and full-width digits are `str.isdigit()` too, but no key sends them)."""
    return text.isascii() and text.isdigit()


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812 (Luhn): double every second digit from the right; the sum is a multiple of 10."""
    if not is_digits(digits) or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mod11_ok(digits: str) -> bool:
    """Weights 2..7 repeating from the right of the body; check = (11 - sum % 11) % 11, 10 never valid."""
    if not is_digits(digits) or len(digits) < 2:
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(ch) * (2 + i % 6) for i, ch in enumerate(reversed(body)))
    expected = (11 - total % 11) % 11
    return expected == check


def checksum_ok(kind: Checksum, digits: str) -> bool:
    if kind is Checksum.LUHN:
        return luhn_ok(digits)
    if kind is Checksum.MOD11:
        return mod11_ok(digits)
    return True


async def run_collect(node: CollectNode, rt: CallRuntime) -> str | None:
    spec = ListenSpec(
        speech=node.speech,
        languages=(rt.dialect,),
        max_digits=node.max_length,
        min_digits=node.min_length,
        terminator=node.terminator,
        no_input_timeout_s=node.timeout_s,
        inter_digit_timeout_s=node.inter_digit_timeout_s,
    )

    async def interpret(result: CallerInput) -> Goto | None:
        if isinstance(result, DigitsInput):
            digits = result.digits.rstrip(node.terminator)
        elif isinstance(result, SpeechInput) and node.speech:
            digits = spoken_digits(result.text)
        else:
            return None
        problem = None
        if not is_digits(digits) or not node.min_length <= len(digits) <= node.max_length:
            problem = "length"
        elif not checksum_ok(node.checksum, digits):
            problem = "checksum"
        if problem is not None:
            rt.emit(StepKind.NO_MATCH, {"invalid": problem, "length": len(digits)})
            return None
        rt.set_var(node.store, digits)
        return Goto(node.next)

    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node))


async def run_survey(node: SurveyNode, rt: CallRuntime) -> str | None:
    spec = ListenSpec(
        speech=True, languages=(rt.dialect,), max_digits=2, min_digits=1, no_input_timeout_s=node.timeout_s
    )

    async def interpret(result: CallerInput) -> Goto | None:
        score: int | None = None
        if isinstance(result, DigitsInput):
            digits = result.digits.rstrip("#")
            score = int(digits) if is_digits(digits) else None
        elif isinstance(result, SpeechInput):
            score = spoken_score(result.text)
        if score is None or not 0 <= score <= 10:
            return None
        rt.record.survey_score = score
        rt.set_var(node.store, score)
        rt.emit(StepKind.SURVEY, {"score": score})
        if node.comment_prompt is not None and score <= node.comment_below:
            await survey_comment(node, rt, score)
        if node.thanks is not None:
            await rt.play([node.thanks])
        return Goto(node.next)

    return await listen_loop(rt, node, spec, interpret, fail=node.on_fail or node.next)
