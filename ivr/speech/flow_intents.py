"""A flow's intents as the speech tools (`ivr nlu`, `ivr asr`) use them, read by `ivr.flow`'s loader.

There is one parser of flow files, the flow loader: a flow `ivr nlu` can score is exactly a flow the
engine serves. Phrases come from the flow's `intents:` (by dialect); keywords from its `ask` nodes
(they name no language, so they are listed under `ANY_LANGUAGE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.speech.errors import IntentSourceError
from ivr.speech.intent import IntentClassifier

__all__ = ["ANY_LANGUAGE", "FlowIntents", "load_flow_intents"]

ANY_LANGUAGE = "*"


@dataclass(slots=True, frozen=True)
class FlowIntents:
    """Training phrases and keywords of a flow, by intent and language."""

    source: str
    phrases: Mapping[str, Mapping[str, tuple[str, ...]]]
    """intent -> language -> phrases."""
    keywords: Mapping[str, Mapping[str, tuple[str, ...]]]

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(self.phrases)

    def examples(self, languages: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Training examples per intent, for `languages` (None: all)."""
        return {i: _pick(by_lang, languages) for i, by_lang in self.phrases.items()}

    def keyword_lists(self, languages: Sequence[str] | None = None) -> dict[str, list[str]]:
        return {i: _pick(by_lang, languages) for i, by_lang in self.keywords.items()}

    def recognizer_phrases(self, language: str) -> tuple[str, ...]:
        """The phrases of `language`: the bias list its recognizer gets in a call (as the engine's
        open question builds it; keywords name no language, so they stay out of every bias)."""
        out: dict[str, None] = {}
        for by_lang in self.phrases.values():
            for p in (*by_lang.get(language, ()), *by_lang.get(ANY_LANGUAGE, ())):
                out.setdefault(p, None)
        return tuple(out)

    def train(self, languages: Sequence[str] | None = None) -> IntentClassifier:
        return IntentClassifier.train(self.examples(languages), keywords=self.keyword_lists(languages))


def _pick(by_lang: Mapping[str, tuple[str, ...]], languages: Sequence[str] | None) -> list[str]:
    if languages is None:
        return [p for ps in by_lang.values() for p in ps]
    wanted = (*languages, ANY_LANGUAGE)
    return [p for lang in wanted for p in by_lang.get(lang, ())]


def load_flow_intents(path: Path | str) -> FlowIntents:
    """The intents of the flow at `path`; a flow the loader refuses, or one with no intents, is an
    `IntentSourceError` naming the file and its problems (`path:line:col: message`)."""
    # Imported here: `ivr.flow` trains its classifier from this package, so the flow side is only
    # reached when a speech tool reads a flow file, never when the engine loads this package.
    from ivr.flow import check_file
    from ivr.flow.model import AskNode

    result = check_file(path, classifier_factory=None)
    if result.flow is None:
        problems = "; ".join(str(p) for p in result.errors[:5])
        raise IntentSourceError(f"{path}: the flow loader refused it: {problems}")
    spec = result.flow.spec
    if not spec.intents:
        raise IntentSourceError(f"{path}: no `intents:` mapping with at least one intent")
    keywords: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in spec.intents}
    for node in spec.nodes.values():
        if isinstance(node, AskNode):
            for name, words in node.keywords.items():
                if name not in keywords:
                    continue  # the validator warns: keywords for an intent the node does not map
                known = keywords[name].get(ANY_LANGUAGE, ())
                keywords[name][ANY_LANGUAGE] = (*known, *(w for w in words if w not in known))
    phrases = {name: dict(intent.phrases) for name, intent in spec.intents.items()}
    return FlowIntents(source=str(path), phrases=phrases, keywords=keywords)
