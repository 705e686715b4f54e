"""The prompt → listen → understand loop every listening node shares, and input parsing helpers.

VoiceXML semantics: separate no-input and no-match counters, each with its own prompt and limit;
reaching a limit is a journey breakpoint and the node's `on_fail` (else the flow's human) follows. An answer the
engine shed under overload (`SpeechInput.shed`) goes there at once: speech, or keys when speech fails.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ivr.call import CallerInput, ListenSpec, NoInput, SpeechInput
from ivr.flow.events import StepKind
from ivr.flow.model import ListeningNode
from ivr.flow.runtime import CallRuntime


@dataclass(slots=True, frozen=True)
class Goto:
    """The input was understood: go to `target` (None ends the call)."""

    target: str | None


NO_MATCH = None
Interpret = Callable[[CallerInput], Awaitable[Goto | None]]


async def listen_loop(
    rt: CallRuntime,
    node: ListeningNode,
    spec: ListenSpec,
    interpret: Interpret,
    *,
    fail: str | None,
    reask: tuple[ListenSpec, Interpret] | None = None,
) -> str | None:
    """Prompt and listen until `interpret` understands or a counter reaches its limit (then `fail`).

    `reask`: after a no-match, listen with this spec and understand with this interpreter (an `ask` node's
    retry prompt names short answers, and the recognizer then listens for those); after a silence, as at first."""
    no_input = no_match = 0
    if not node.typeahead:
        spec = replace(spec, typeahead=False)
        reask = None if reask is None else (replace(reask[0], typeahead=False), reask[1])
    turn, understand = spec, interpret
    prompt_id = node.prompt
    lead_in = node.lead_in
    while True:
        result = await rt.call.listen(turn, [*(rt.prompt(p) for p in lead_in), rt.prompt(prompt_id)])
        rt.note_input(result, *lead_in, prompt_id)
        lead_in = ()
        if isinstance(result, NoInput):
            no_input += 1
            if no_input >= node.no_input.max:
                rt.breakpoint(StepKind.RETRIES_EXHAUSTED, "no_input", {"count": no_input})
                return fail
            prompt_id = node.no_input.prompt or node.prompt
            turn, understand = spec, interpret
            continue
        if isinstance(result, SpeechInput) and result.shed:
            # Overload: asking to speak again would add to what the recognizers cannot keep up with.
            rt.breakpoint(StepKind.SPEECH_SHED, "speech_shed")
            return fail
        outcome = await understand(result)
        if outcome is not None:
            return outcome.target
        no_match += 1
        rt.emit(StepKind.NO_MATCH, {"count": no_match})
        if no_match >= node.no_match.max:
            rt.breakpoint(StepKind.RETRIES_EXHAUSTED, "no_match", {"count": no_match})
            return fail
        prompt_id = node.no_match.prompt or node.prompt
        if reask is not None:
            turn, understand = reask


# --- spoken digits and yes/no ----------------------------------------------------------------

_DIGIT_WORDS: dict[str, str] = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "幺": "1",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "拐": "7",
    "八": "8",
    "九": "9",
    "勾": "9",
}
_EN_DIGITS: dict[str, str] = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "to": "2",
    "too": "2",
    "three": "3",
    "four": "4",
    "for": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_WORD = re.compile(r"[a-z]+|\d|[^\sa-z\d]")


def spoken_digits(text: str) -> str:
    """Digits in an utterance: "一三九 0 one two" → "139012". Other words are ignored."""
    out: list[str] = []
    for token in _WORD.findall(text.lower()):
        if token.isascii() and token.isdigit():
            out.append(token)
        elif token in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[token])
        elif token in _EN_DIGITS:
            out.append(_EN_DIGITS[token])
    return "".join(out)


_YES_FIRST = ("没错", "是的", "对的", "可以", "没问题")
_NO = ("不是", "不对", "不要", "不用", "没有", "不", "否", "错", "no", "nope", "not", "wrong", "cancel")
_YES = ("是", "对", "好", "嗯", "确认", "要", "yes", "yeah", "yep", "correct", "right", "sure", "ok", "okay")


YES_NO_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("yes", "yeah", "yes please", "that's right", "correct", "sure", "okay",
           "no", "nope", "no thanks", "not really", "wrong"),
    "cmn": ("是", "是的", "对", "对的", "没错", "好的", "可以", "不是", "不对", "不要", "不用"),
}
"""What a yes/no question listens for, per language (`yes_no` reads each): a recognizer searching these alone
hears a short answer better than one searching every word it knows. Other languages decode freely."""


def yes_no_phrases(language: str) -> tuple[str, ...]:
    """The recognizer's phrase list for a yes/no question in `language` (() where none is known: free decoding)."""
    return YES_NO_PHRASES.get(language, ())


def yes_no(result: CallerInput) -> bool | None:
    """Key 1 / yes-words → True, key 2 / no-words → False, else None."""
    if isinstance(result, SpeechInput):
        text = result.text.lower()
        words = set(re.findall(r"[a-z]+", text))
        if any(w in text for w in _YES_FIRST):
            return True
        if any((w in words) if w.isascii() else (w in text) for w in _NO):
            return False
        if any((w in words) if w.isascii() else (w in text) for w in _YES):
            return True
        return None
    digits = getattr(result, "digits", "")
    if digits[:1] == "1":
        return True
    if digits[:1] == "2":
        return False
    return None


def spoken_score(text: str) -> int | None:
    """An NPS answer 0..10 from speech: "十分", "10", "ten", "九分", "nine"."""
    low = text.lower()
    if (
        "10" in low
        or re.search(r"\bten\b", low)
        or ("十" in low and not re.search(r"十[一二三四五六七八九]", low))
    ):
        return 10
    digits = spoken_digits(low)
    return int(digits[0]) if digits else None
