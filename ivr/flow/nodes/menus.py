"""Nodes that route by what the caller says or presses: `menu`, `ask` (say your need once), `confirm`."""

from __future__ import annotations

from collections.abc import Mapping

from ivr.call import CallerInput, DigitsInput, ListenSpec, SpeechInput
from ivr.flow.events import StepKind
from ivr.flow.model import AskNode, ConfirmNode, MenuNode
from ivr.flow.nodes.listening import Goto, listen_loop, spoken_digits, yes_no
from ivr.flow.runtime import CallRuntime


def _key_target(rt: CallRuntime, key: str, keys: Mapping[str, str], human_key: str | None) -> Goto | None:
    if key in keys:
        return Goto(keys[key])
    if human_key is not None and key == human_key:
        rt.emit(StepKind.INTENT, {"intent": "human_key", "key": key})
        return Goto(rt.human_target())
    return None


async def run_menu(node: MenuNode, rt: CallRuntime) -> str | None:
    spec = ListenSpec(
        speech=node.speech,
        languages=(rt.dialect,),
        max_digits=1,
        min_digits=1,
        no_input_timeout_s=node.timeout_s,
    )

    async def interpret(result: CallerInput) -> Goto | None:
        key = ""
        if isinstance(result, DigitsInput):
            key = result.digits[:1]
        elif isinstance(result, SpeechInput) and node.speech:
            key = spoken_digits(result.text)[:1]
        return _key_target(rt, key, node.keys, node.human_key) if key else None

    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node))


async def run_confirm(node: ConfirmNode, rt: CallRuntime) -> str | None:
    spec = ListenSpec(languages=(rt.dialect,), max_digits=1, no_input_timeout_s=node.timeout_s)

    async def interpret(result: CallerInput) -> Goto | None:
        answer = yes_no(result)
        if answer is None:
            return None
        rt.emit(StepKind.CONFIRMED, {"answer": answer})
        return Goto(node.yes if answer else node.no)

    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node))


def _keyword_intent(node: AskNode, text: str) -> str | None:
    """The intent whose longest keyword occurs in the text (keywords override the classifier)."""
    low = text.lower()
    best: tuple[int, str] | None = None
    for intent, words in node.keywords.items():
        for word in words:
            if word and word.lower() in low and (best is None or len(word) > best[0]):
                best = (len(word), intent)
    return best[1] if best else None


async def run_ask(node: AskNode, rt: CallRuntime) -> str | None:
    languages = (rt.dialect, *(lang for lang in node.switch_language if lang != rt.dialect))
    phrases = tuple(
        p
        for name in node.intents
        if name in rt.flow.spec.intents
        for lang in languages
        for p in rt.flow.spec.intents[name].phrases.get(lang, ())
    )
    spec = ListenSpec(
        speech=True, languages=languages, phrases=phrases, max_digits=1, no_input_timeout_s=node.timeout_s
    )

    async def interpret(result: CallerInput) -> Goto | None:
        if isinstance(result, DigitsInput):
            return _key_target(rt, result.digits[:1], node.keys, node.human_key)
        if not isinstance(result, SpeechInput):
            return None
        if result.language in node.switch_language and result.language != rt.dialect:
            rt.set_var("dialect", result.language)
        intent, confidence, source = _classify(node, rt, result)
        rt.record.intent = intent or ""
        rt.record.confidence = confidence
        rt.emit(
            StepKind.INTENT, {"intent": intent or "", "confidence": round(confidence, 4), "source": source}
        )
        if intent is None:
            return None
        if confidence >= node.thresholds.act:
            return Goto(node.intents[intent])
        if confidence >= node.thresholds.confirm and node.confirm_prompt is not None:
            if await _confirm_intent(node, rt, intent):
                return Goto(node.intents[intent])
        return None

    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node))


def _asr_weight(result: SpeechInput) -> float:
    """The recognizer's own doubt lowers the intent's confidence (typed text is 1.0)."""
    return min(1.0, max(0.0, result.confidence))


def _classify(node: AskNode, rt: CallRuntime, result: SpeechInput) -> tuple[str | None, float, str]:
    keyword = _keyword_intent(node, result.text)
    if keyword is not None and keyword in node.intents:
        return keyword, _asr_weight(result), "keyword"
    classifier = rt.flow.classifier
    if classifier is None:
        return None, 0.0, "none"
    scores = [s for s in classifier.classify(result.text) if s.intent in node.intents]
    if not scores:
        return None, 0.0, "classifier"
    top = max(scores, key=lambda s: s.confidence)
    return top.intent, float(top.confidence) * _asr_weight(result), "classifier"


async def _confirm_intent(node: AskNode, rt: CallRuntime, intent: str) -> bool:
    assert node.confirm_prompt is not None
    labels = rt.flow.spec.intents[intent].label
    label = rt.text_for(labels, rt.dialect) if labels else intent
    prompt = rt.prompt(node.confirm_prompt, {"intent_label": label})
    spec = ListenSpec(languages=(rt.dialect,), max_digits=1, no_input_timeout_s=node.timeout_s)
    result = await rt.call.listen(spec, [prompt])
    rt.note_input(result, node.confirm_prompt)
    answer = yes_no(result)
    rt.emit(StepKind.CONFIRMED, {"intent": intent, "answer": answer})
    return answer is True
