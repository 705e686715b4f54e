"""A listening node with `typeahead: false` asks for keys pressed after its question only (consent)."""

from __future__ import annotations

from ivr.clock import FakeClock
from ivr.flow import Interpreter
from ivr.flow.loader import load_text
from ivr.journey import MemoryJourneySink
from ivr.testing import SimCall, Turn

FLOW = """id: consent
version: "1"
numbers: ["95519"]
queues: [general]
prompts:
  risk: {cmn: 风险提示}
  ask_agree: {cmn: 同意请按1}
  bye: {cmn: 再见}
nodes:
  start:
    type: menu
    prompt: risk
    keys: {"1": agree}
  agree:
    type: menu
    prompt: ask_agree
    keys: {"1": bye}
    typeahead: false
  bye:
    type: hangup
    prompt: bye
"""


async def test_only_the_node_that_says_so_refuses_keys_pressed_before_its_question() -> None:
    flow = load_text(FLOW, "consent.yaml", classifier_factory=None).flow
    assert flow is not None
    call = SimCall(script=[Turn.keys("1"), Turn.keys("1")])
    await Interpreter(sink=MemoryJourneySink(), clock=FakeClock()).run(flow, call)
    assert [spec.typeahead for spec in call.listens] == [True, False]
