"""An answer the engine could not decode under overload goes to the node's keys at once (speech, or keys when
speech fails), as a journey breakpoint; the caller is not asked to speak again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ivr.call import CallerInput, ListenSpec, Prompt, SpeechInput
from ivr.flow import Flow
from ivr.flow.events import StepKind
from ivr.testing import Turn
from ivr.testing.flowsim import simulate
from ivr.testing.simcall import SimCall

from .conftest import CUSTOMER, StubHttp


async def test_a_shed_answer_goes_to_the_keys_menu_at_once(hotline: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    listen = SimCall.listen
    shed = [1]

    async def overloaded(self: SimCall, spec: ListenSpec, prompts: Sequence[Prompt] = ()) -> CallerInput:
        if shed[0] and spec.speech:
            shed[0] -= 1
            await listen(self, spec, prompts)  # the caller's turn is taken: what they said was not decoded
            return SpeechInput("", 0.0, "cmn", shed=True)
        return await listen(self, spec, prompts)

    monkeypatch.setattr(SimCall, "listen", overloaded)
    caller = "13800138000"
    http = StubHttp({"/api/customers/" + caller: CUSTOMER})  # type: ignore[dict-item]
    sim = await simulate(hotline, [Turn.say("我要报案"), Turn.keys("1")], caller=caller, backend="http://stub",
                         http=http)
    shed_steps = [e for e in sim.events if e.kind == StepKind.SPEECH_SHED.value]
    assert len(shed_steps) == 1 and shed_steps[0].node == "need" and shed_steps[0].breakpoint
    assert sim.record.breakpoint_node == "need"
    assert "ask_need_retry" not in sim.call.prompt_ids, "not asked to speak again"
    assert sim.record.path[sim.record.path.index("need") + 1] == "main_menu"
    assert sim.record.queue == "claims", "the caller pressed 1 on the keys menu"
