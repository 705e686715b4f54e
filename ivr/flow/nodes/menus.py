"""Nodes that route by what the caller says or presses: `menu`, `ask` (say your need once), `confirm`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from ivr.call import CallerInput, DigitsInput, ListenSpec, SpeechInput
from ivr.flow.events import StepKind
from ivr.flow.intents import Classifier
from ivr.flow.model import AskNode, ConfirmNode, Flow, MenuNode, Thresholds
from ivr.flow.nodes.listening import Goto, listen_loop, spoken_digits, yes_no, yes_no_phrases
from ivr.flow.runtime import CallRuntime


def _key_target(rt: CallRuntime, key: str, keys: Mapping[str, str], human_key: str | None) -> Goto | None:
    if key in keys:
        return Goto(keys[key])
    if human_key is not None and key == human_key:
        # The journey says the caller asked for a human; the record's intent stays the caller's
        # need, so reports (intent mix, "need captured") do not count a key press as one.
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


def yes_no_spec(dialect: str, timeout_s: float) -> ListenSpec:
    """A yes/no question's listen, biased to the language's yes/no words. Not `closed`: in Whisper calls, Whisper
    understood 90.8% of the callers' yes or no, PocketSphinx searching the yes/no words 83.7% (dev, bench/RESULTS.md
    "hybrid"); the re-ask's one-word answers are another matter (`answer_spec`)."""
    return ListenSpec(languages=(dialect,), phrases=yes_no_phrases(dialect), max_digits=1,
                      no_input_timeout_s=timeout_s)


def answer_spec(spec: ListenSpec, answers: tuple[str, ...]) -> ListenSpec:
    """The re-ask's listen after a no-match: the answers it named are the turn's whole answer set (`closed`): in a
    Whisper call, 73.4% of the callers asked again were routed right by PocketSphinx searching only the answers,
    18.5% by Whisper (dev, bench/RESULTS.md "hybrid")."""
    return replace(spec, phrases=answers, closed=True)


async def run_confirm(node: ConfirmNode, rt: CallRuntime) -> str | None:
    spec = yes_no_spec(rt.dialect, node.timeout_s)

    async def interpret(result: CallerInput) -> Goto | None:
        answer = yes_no(result)
        if answer is None:
            return None
        rt.emit(StepKind.CONFIRMED, {"answer": answer})
        return Goto(node.yes if answer else node.no)

    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node))


NEGATING_WORDS = frozenset({"don't", "dont", "do not", "not", "never", "no", "doesn't", "won't", "didn't"})
"""English words that, up to six words before a keyword in its clause, take it back: "I don't want to make a claim"."""
NEGATING_CHARS = "不别没"
"""Chinese negations right before a keyword: "不想退保", "别退保", "不同意" (its own keyword, longer, wins)."""
CLAUSE_BREAK = re.compile(r"[,，。.;；!！?？]|\bbut\b|但是|可是|不过")


def _keyword_intent(node: AskNode, text: str) -> str | None:
    """The intent whose longest keyword occurs in the text, not negated (keywords override the classifier)."""
    low = text.lower()
    best: tuple[int, str] | None = None
    for intent, words in node.keywords.items():
        for word in words:
            if word and (best is None or len(word) > best[0]) and _says(low, word.lower()):
                best = (len(word), intent)
    return best[1] if best else None


def _says(text: str, keyword: str) -> bool:
    """`keyword` occurs in `text` at least once not negated within its clause ("缺钱但是不想退保" does not say 退保;
    "not sure, a claim I think" does say claim)."""
    start = text.find(keyword)
    while start >= 0:
        clause = CLAUSE_BREAK.split(text[:start])[-1]
        words = clause.split()[-6:]
        negated = any(w in NEGATING_WORDS for w in words) or any(c in NEGATING_CHARS for c in clause.strip()[-2:])
        if not negated:
            return True
        start = text.find(keyword, start + 1)
    return False


def ask_inputs(flow: Flow, node: AskNode, dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The languages an open question listens in for a caller in `dialect`, and its phrase bias."""
    languages = (dialect, *(lang for lang in node.switch_language if lang != dialect))
    phrases = tuple(
        p
        for name in node.intents
        if name in flow.spec.intents
        for lang in languages
        for p in flow.spec.intents[name].phrases.get(lang, ())
    )
    return languages, phrases


def answer_phrases(node: AskNode, languages: tuple[str, ...]) -> tuple[str, ...]:
    """What a caller asked again after a no-match may say: the node's `no_match.answers` in `languages`, or ()
    (listen as the first time) unless every one of them has answers: each language's recognizer gets the list,
    and one that knows none of its words would hear nothing."""
    have = {lang for by_lang in node.no_match.answers.values() for lang, answers in by_lang.items() if answers}
    if not languages or not have.issuperset(languages):
        return ()
    return tuple(dict.fromkeys(
        a for by_lang in node.no_match.answers.values() for lang in languages for a in by_lang.get(lang, ())))


def retry_thresholds(node: AskNode) -> Thresholds:
    """Act / confirm levels for an answer heard after a no-match (`no_match.thresholds`, else the node's)."""
    return node.no_match.thresholds or node.thresholds


def answer_intent(node: AskNode, result: SpeechInput) -> tuple[str | None, float]:
    """The intent whose `no_match.answers` the caller said, and how sure the recognizer is of it."""
    from ivr.speech.intent import after_correction  # the flow package loads without the speech stack

    def said(text: str) -> str | None:
        low = after_correction(text).lower()
        best: tuple[int, str] | None = None
        for intent, by_lang in node.no_match.answers.items():
            for word in (a for answers in by_lang.values() for a in answers):
                if (best is None or len(word) > best[0]) and _says(low, word.lower()):
                    best = (len(word), intent)
        return best[1] if best else None

    intent = said(result.text) if result.text.strip() else None
    if intent is None or intent not in node.intents:
        return None, 0.0
    return intent, _agreement(result, intent, said)


async def run_ask(node: AskNode, rt: CallRuntime) -> str | None:
    languages, phrases = ask_inputs(rt.flow, node, rt.dialect)
    spec = ListenSpec(
        speech=True, languages=languages, phrases=phrases, max_digits=1, no_input_timeout_s=node.timeout_s
    )

    async def decide(intent: str | None, confidence: float, source: str, levels: Thresholds) -> Goto | None:
        rt.record.intent = intent or ""
        rt.record.confidence = confidence
        rt.emit(
            StepKind.INTENT, {"intent": intent or "", "confidence": round(confidence, 4), "source": source}
        )
        if intent is None:
            return None
        if confidence >= levels.act:
            return Goto(node.intents[intent])
        if confidence >= levels.confirm and node.confirm_prompt is not None:
            if await _confirm_intent(node, rt, intent):
                return Goto(node.intents[intent])
        return None

    def heard(result: CallerInput) -> SpeechInput | None:
        if not isinstance(result, SpeechInput):
            return None
        if result.language in node.switch_language and result.language != rt.dialect:
            rt.set_var("dialect", result.language)
        return result

    async def interpret(result: CallerInput) -> Goto | None:
        if isinstance(result, DigitsInput):
            return _key_target(rt, result.digits[:1], node.keys, node.human_key)
        speech = heard(result)
        return None if speech is None else await decide(*_classify(node, rt, speech), node.thresholds)

    async def interpret_answer(result: CallerInput) -> Goto | None:
        """After a no-match: one of the answers the retry prompt named (keys as the first time)."""
        if isinstance(result, DigitsInput):
            return await interpret(result)
        speech = heard(result)
        return None if speech is None else await decide(*classify_answer(node, speech), retry_thresholds(node))

    answers = answer_phrases(node, languages)
    reask = (answer_spec(spec, answers), interpret_answer) if answers else None
    return await listen_loop(rt, node, spec, interpret, fail=rt.failure_target(node), reask=reask)


def classify_answer(node: AskNode, result: SpeechInput) -> tuple[str | None, float, str]:
    """What a caller asked again after a no-match said: an answer the retry prompt named (`no_match.answers`)
    and the recognizer's confidence in it, else nothing. Its recognizers listened for the answers alone, so
    other words they give are the search's filler ("i want", "a question about"): read by the classifier
    they named a wrong intent for a third of the callers without an answer (dev audio, bench.speech_turns)."""
    intent, confidence = answer_intent(node, result)
    return intent, confidence, "answer"


def _asr_weight(result: SpeechInput) -> float:
    """The recognizer's own doubt lowers the intent's confidence (typed text is 1.0)."""
    return min(1.0, max(0.0, result.confidence))


def _classify(node: AskNode, rt: CallRuntime, result: SpeechInput) -> tuple[str | None, float, str]:
    return classify_speech(node, rt.flow.classifier, result)


def classify_speech(
    node: AskNode, classifier: Classifier | None, result: SpeechInput
) -> tuple[str | None, float, str]:
    """(intent or None, confidence the flow compares with its thresholds, source) for what was heard.

    Public so that `bench/speech_eval.py` scores exactly the decision a call makes."""
    from ivr.speech.intent import after_correction  # the flow package loads without the speech stack

    if not result.text.strip():  # heard but not recognized: a no-match with no intent to record
        return None, 0.0, "none"
    # "退保，不对，我想改地址": a keyword the caller took back does not decide.
    keyword = _keyword_intent(node, after_correction(result.text))
    if keyword is not None and keyword in node.intents:
        return keyword, _keyword_weight(node, result, keyword), "keyword"
    if classifier is None:
        return None, 0.0, "none"
    totals = _intent_posterior(classifier, result, node)
    if not totals:
        return None, 0.0, "classifier"
    intent = max(totals, key=totals.__getitem__)
    return intent, totals[intent], "classifier"


def _keyword_weight(node: AskNode, result: SpeechInput, intent: str) -> float:
    """How sure the recognizer is that the caller said a keyword of `intent` (`_agreement`)."""
    from ivr.speech.intent import after_correction  # the flow package loads without the speech stack

    return _agreement(result, intent, lambda text: _keyword_intent(node, after_correction(text)))


def _agreement(result: SpeechInput, intent: str, says: Callable[[str], str | None]) -> float:
    """How sure the recognizer is that the caller said a word of `intent`, `says` reading a text's word.

    With an n-best list: the share of it (by weight, `_mass`) whose own word is that intent. A
    one-word answer's n-best is the word with fillers around it ("yes", "yes i", "i yes", "yes to"):
    judged by the best text's own confidence alone a clear "yes" once fell below any threshold, so a
    live consent by speech was asked again until it failed; they all say yes.
    """
    hypotheses = [(h.text, max(0.0, h.confidence)) for h in result.nbest if h.text.strip()]
    if len(hypotheses) < 2:
        return _asr_weight(result)
    total = _mass(weight for _, weight in hypotheses)
    agreeing = sum(weight for text, weight in hypotheses if says(text) == intent)
    return min(1.0, agreeing / total)


def _mass(weights: Iterable[float]) -> float:
    """What a hypothesis's confidence is divided by: the n-best's total when it exceeds 1 (scores that
    are not probabilities, e.g. agreement counts), else 1. PocketSphinx's n-best posteriors sum to the
    best path's word posterior (below 1 when the recognizer doubts the whole list: measured on the dev
    split, that doubt separates wrong intents from right ones, bench/RESULTS.md), Vosk's sum to 1."""
    return max(1.0, sum(max(0.0, w) for w in weights))


_TOGETHER = 0.3
"""Share of `_intent_posterior` that reads the n-best's texts as one (`_together`) rather than one by one."""


def _intent_posterior(classifier: Classifier, result: SpeechInput, node: AskNode) -> dict[str, float]:
    """P(intent | audio), summed over the recognizer's alternatives.

    When the recognizer gives an n-best list, each hypothesis is classified and weighted by its
    share of the recognizer's confidence: doubt about words that all mean the same need ("I want to
    file a claim" / "on to file a claim") costs nothing, doubt that changes the need does. Without
    alternatives, the recognizer's one confidence scales the classifier's. Confidences that sum to at
    most 1 are probabilities (`_mass`): what they leave out is doubt that any of them was said.

    A share (`_TOGETHER`) reads the hypotheses as one text instead: a word the best reading garbled is often right in
    another ("i want alone" / "i want a loan"), and the classifier then weighs every word the recognizer considered.
    Moonshine, dev audio (6,110 clips, with `ivr.speech.intent`'s shortened phrases and misread corrections): clean
    85.7 -> 86.0% right, babble 10 dB 67.2 -> 67.7%, false accepts 1.4 -> 1.0% (0.5 did as well on right, with more
    false accepts; reading them only together, 1, did worse).
    """
    hypotheses = [(h.text, h.confidence) for h in result.nbest if h.text.strip()]
    if len(hypotheses) < 2:
        return {s.intent: float(s.confidence) * _asr_weight(result)
                for s in classifier.classify(result.text) if s.intent in node.intents}
    weight_sum = _mass(w for _, w in hypotheses)
    totals: dict[str, float] = {}
    for text, weight in hypotheses:
        for score in classifier.classify(text):
            if score.intent in node.intents:
                totals[score.intent] = totals.get(score.intent, 0.0) + score.confidence * max(0.0, weight) / weight_sum
    together = _together(classifier, [text for text, _ in hypotheses])
    doubt = sum(max(0.0, w) for _, w in hypotheses) / weight_sum
    return {intent: (1.0 - _TOGETHER) * totals.get(intent, 0.0) + _TOGETHER * doubt * together.get(intent, 0.0)
            for intent in node.intents if intent in totals or intent in together}


def _together(classifier: Classifier, texts: list[str]) -> dict[str, float]:
    """The classifier's confidences for the hypotheses read as one text, each after its own self-correction."""
    from ivr.speech.intent import after_correction  # the flow package loads without the speech stack

    return {s.intent: float(s.confidence) for s in classifier.classify(" ".join(after_correction(t) for t in texts))}


async def _confirm_intent(node: AskNode, rt: CallRuntime, intent: str) -> bool:
    assert node.confirm_prompt is not None
    labels = rt.flow.spec.intents[intent].label
    label = rt.text_for(labels, rt.dialect) if labels else intent
    prompt = rt.prompt(node.confirm_prompt, {"intent_label": label})
    result = await rt.call.listen(yes_no_spec(rt.dialect, node.timeout_s), [prompt])
    rt.note_input(result, node.confirm_prompt)
    answer = yes_no(result)
    rt.emit(StepKind.CONFIRMED, {"intent": intent, "answer": answer})
    return answer is True
