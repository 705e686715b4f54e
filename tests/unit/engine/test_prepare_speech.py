"""The engine's start-up prewarm (`Engine._prepare_speech`): open questions and their re-asks' answer sets."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from types import SimpleNamespace

from ivr.config import EngineConfig
from ivr.engine.app import Engine
from ivr.flow.loader import load_flow
from ivr.flow.model import AskNode
from ivr.flow.nodes.menus import answer_phrases, ask_inputs

HOTLINE = pathlib.Path(__file__).resolve().parents[3] / "flows" / "hotline.yaml"


class Prepared:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], bool]] = []

    def prepare(self, dialect: str, phrases: Sequence[str], *, recognizers: int = 1, closed: bool = False) -> None:
        self.calls.append((dialect, tuple(phrases), closed))


def test_every_reask_answer_set_is_prepared_as_a_closed_turn_once() -> None:
    flow = load_flow(HOTLINE)
    models = Prepared()
    engine = SimpleNamespace(registry=SimpleNamespace(flows=lambda: [flow]), speech_models=models,
                             config=EngineConfig())
    Engine._prepare_speech(engine)  # type: ignore[arg-type]
    asks = [n for n in flow.spec.nodes.values() if isinstance(n, AskNode)]
    reasks = {(lang, answers) for node in asks for dialect in flow.spec.dialects
              for languages in [ask_inputs(flow, node, dialect)[0]]
              if (answers := answer_phrases(node, languages)) for lang in languages}
    assert reasks, "the hotline has a re-ask with answers"
    assert {(lang, phrases) for lang, phrases, closed in models.calls if closed} == reasks
    assert len(models.calls) == len(set(models.calls)), "each bias prepared once"
    assert any(not closed for _, _, closed in models.calls)
