"""The `record_prompts` node (the prompt-recording line) over a simulated call and an in-memory studio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.call import CaptureEnd
from ivr.clock import FakeClock
from ivr.flow import Flow, Interpreter, load_flow
from ivr.flow.events import StepKind
from ivr.journey import CallRecord, MemoryJourneySink
from ivr.testing import SimCall, Turn

ROOT = Path(__file__).resolve().parents[3]
PIN = "2468"


class FakeStudio:
    def __init__(self) -> None:
        self.todo = {"cdo": [("greeting", "您好"), ("goodbye", "再见")], "cmn": []}
        self.saved: list[tuple[str, str, int]] = []
        self.pins_tried: list[str] = []

    def check_pin(self, pin: str) -> bool:
        self.pins_tried.append(pin)
        return pin == PIN

    def dialect_codes(self) -> list[str]:
        return sorted(self.todo)

    def to_record(self, dialect: str) -> list[tuple[str, str]]:
        return list(self.todo[dialect])

    def save(self, dialect: str, prompt_id: str, audio: NDArray[np.int16]) -> Path:
        self.saved.append((dialect, prompt_id, len(audio)))
        self.todo[dialect] = [p for p in self.todo[dialect] if p[0] != prompt_id]
        return Path(f"prompts/{dialect}/{prompt_id}.wav")


@pytest.fixture
def line() -> Flow:
    return load_flow(ROOT / "flows" / "promptline.yaml", classifier_factory=None)


async def run(flow: Flow, studio: FakeStudio, *turns: Turn) -> tuple[SimCall, list[str]]:
    call, sink, _ = await run_full(flow, studio, *turns)
    return call, [e.kind for e in sink.events]


async def run_full(flow: Flow, studio: FakeStudio, *turns: Turn) -> tuple[SimCall, MemoryJourneySink, CallRecord]:
    sink = MemoryJourneySink()
    call = SimCall(script=list(turns))
    record = await Interpreter(sink=sink, clock=FakeClock(), studio=studio).run(flow, call)
    return call, sink, record


async def test_staff_record_a_prompt_hear_it_again_and_keep_it(line: Flow) -> None:
    studio = FakeStudio()
    call, kinds = await run(
        line, studio,
        Turn.keys(f"{PIN}#"), Turn.keys("1#"), Turn.keys("#"), Turn.message("您好，欢迎致电"),
        Turn.keys("3"), Turn.keys("1"),
        Turn.keys("#"), Turn.message("再见啦"), Turn.keys("2"), Turn.message("再见"), Turn.keys("1"),
    )
    assert studio.saved == [("cdo", "greeting", 5600), ("cdo", "goodbye", 4000)]
    assert len(call.played_audio) == 4, "each take is played back; the first twice, the re-recorded one once"
    assert call.prompt_ids == [
        "pin", "pick_dialect", "pick_prompt", "record_take", "review_take", "review_take", "take_saved",
        "pick_prompt", "record_take", "review_take", "record_take", "review_take", "take_saved",
        "all_recorded", "line_goodbye",
    ]
    assert "cdo" in call.spoken[1] and "1: cdo, 2: cmn" in call.spoken[1]
    assert "您好" in call.spoken[2] and "greeting" in call.spoken[2]
    assert kinds.count(StepKind.PROMPT_RECORDED.value) == 2
    assert all(spec.beep and spec.end_keys == "#" for spec in call.records)


async def test_a_prompt_is_picked_by_number(line: Flow) -> None:
    studio = FakeStudio()
    await run(line, studio, Turn.keys(f"{PIN}#"), Turn.keys("1#"), Turn.keys("2#"), Turn.message("再见"),
              Turn.keys("1"), Turn.silence())
    assert studio.saved == [("cdo", "goodbye", 4000)]


async def test_three_wrong_pins_end_the_session_and_the_pin_is_never_journeyed(line: Flow) -> None:
    studio = FakeStudio()
    call, sink, record = await run_full(line, studio, Turn.keys("1111#"), Turn.keys("2222#"), Turn.keys("3333#"))
    assert call.prompt_ids == ["pin", "bad_pin", "pin", "bad_pin", "pin", "bad_pin", "line_goodbye"]
    assert studio.pins_tried == ["1111", "2222", "3333"] and record.breakpoint_node == "studio"
    for event in sink.events:
        assert not any("1111" in str(v) or "2222" in str(v) for v in event.data.values()), event


async def test_a_hang_up_during_a_take_keeps_nothing(line: Flow) -> None:
    studio = FakeStudio()
    await run(line, studio, Turn.keys(f"{PIN}#"), Turn.keys("1#"), Turn.keys("#"),
              Turn.message("您好", ends=CaptureEnd.HANGUP))
    assert studio.saved == []


async def test_nothing_left_to_record_says_so(line: Flow) -> None:
    studio = FakeStudio()
    call, _ = await run(line, studio, Turn.keys(f"{PIN}#"), Turn.keys("2#"))
    assert call.prompt_ids[-2:] == ["all_recorded", "line_goodbye"]
