"""Read a flow file's `intents:` section into typed phrases (until `ivr.flow` exposes its loader).

Accepted shapes, per intent::

    intents:
      claim:
        phrases: {cmn: [我要理赔, ...], en: [I want to file a claim, ...]}
        keywords: {cmn: [理赔], en: [claim]}     # or a plain list
      agent: {phrases: [转人工, talk to an agent]}   # one list, language unknown ("*")
      loan: {cmn: [...], en: [...]}                  # languages directly under the intent
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.speech.errors import IntentSourceError
from ivr.speech.intent import IntentClassifier

__all__ = ["ANY_LANGUAGE", "FlowIntents", "load_flow_intents"]

ANY_LANGUAGE = "*"
_META_KEYS = frozenset(
    {"phrases", "keywords", "examples", "description", "queue", "skills", "prompt", "label"}
)


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
        """Everything a caller of `language` might say: the bias list for its recognizer."""
        out: dict[str, None] = {}
        for table in (self.phrases, self.keywords):
            for by_lang in table.values():
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
    """Parse the `intents:` section of a flow YAML file; errors name the file and the intent."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IntentSourceError(f"{p}: cannot read flow file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise IntentSourceError(f"{p}: not valid YAML: {exc}") from exc
    return parse_intents(doc.get("intents") if isinstance(doc, Mapping) else None, source=str(p))


def parse_intents(raw: Any, *, source: str) -> FlowIntents:
    if not isinstance(raw, Mapping) or not raw:
        raise IntentSourceError(f"{source}: no `intents:` mapping with at least one intent")
    phrases: dict[str, dict[str, tuple[str, ...]]] = {}
    keywords: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, body in raw.items():
        where = f"{source}: intent {name!r}"
        if isinstance(body, Mapping):
            if "phrases" in body or "examples" in body:
                phrase_part = body.get("phrases", body.get("examples"))
            else:
                phrase_part = {k: v for k, v in body.items() if k not in _META_KEYS}
            phrases[str(name)] = _by_language(phrase_part, where)
            keywords[str(name)] = _by_language(body.get("keywords") or {}, where + " keywords")
        else:
            phrases[str(name)] = _by_language(body, where)
            keywords[str(name)] = {}
        if not any(phrases[str(name)].values()):
            raise IntentSourceError(f"{where}: has no training phrases")
    return FlowIntents(source=source, phrases=phrases, keywords=keywords)


def _by_language(part: Any, where: str) -> dict[str, tuple[str, ...]]:
    if isinstance(part, Mapping):
        return {str(lang): _strings(v, f"{where} [{lang}]") for lang, v in part.items()}
    return {ANY_LANGUAGE: _strings(part, where)}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, (str, int, float)) for v in value):
        raise IntentSourceError(f"{where}: expected a list of phrases, got {type(value).__name__}")
    return tuple(str(v) for v in value if str(v).strip())
