"""The intent classifier a loaded flow holds, trained once from the flow's phrases in every language."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol


class Scored(Protocol):
    @property
    def intent(self) -> str: ...

    @property
    def confidence(self) -> float: ...


class Classifier(Protocol):
    def classify(self, text: str) -> Sequence[Scored]: ...


ClassifierFactory = Callable[[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]], Classifier]
"""`(examples, heard) -> classifier`: `{intent: [phrase]}` from the flow, and `{intent: [text]}` a recognizer made of
those phrases (the flow's heard file for the English engine, `<flow>.heard.<engine>.tsv`,
`ivr.flow.loader.read_heard`; empty without one), which the factory
may weigh below the phrases."""


def default_factory(examples: Mapping[str, Sequence[str]], heard: Mapping[str, Sequence[str]]) -> Classifier:
    """The speech package's classifier (imported here so loading a flow without intents needs no sklearn), the heard
    examples weighed below the phrases (`ivr.speech.intent.IntentClassifier.train`)."""
    from ivr.speech.intent import IntentClassifier

    return IntentClassifier.train(examples, heard=heard)


def training_examples(phrases: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """`{intent: {dialect: [phrase...]}}` → `{intent: [every phrase]}`."""
    return {intent: [p for texts in by_lang.values() for p in texts] for intent, by_lang in phrases.items()}
