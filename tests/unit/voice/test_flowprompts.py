from __future__ import annotations

import pathlib

import pytest

from ivr.engine.flowprompts import FlowPrompts, load_flow_prompts
from ivr.flow import load_flow
from ivr.voice import FlowPromptsError

DEMO = pathlib.Path(__file__).parent / "data" / "flows" / "demo.yaml"


def test_prompts_of_a_loaded_flow() -> None:
    flow = FlowPrompts.of(load_flow(DEMO, classifier_factory=None))
    assert flow.name == "demo" and flow.path == DEMO
    assert flow.dialects == ("cmn", "yue", "hak", "nan", "wuu", "en")
    assert flow.texts["goodbye"] == {"cmn": "感谢您的来电，再见。", "en": "Thank you for calling. Goodbye."}


def test_load_reads_top_level_flow_files_only(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.yaml").write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "c.yaml").write_text("- not a flow\n", encoding="utf-8")
    assert [f.name for f in load_flow_prompts(tmp_path)] == ["demo"]


def test_a_refused_flow_is_reported_with_file_and_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: a\nprompts: {hi: [\n", encoding="utf-8")
    with pytest.raises(FlowPromptsError, match=r"bad\.yaml:3:1: YAML syntax error"):
        load_flow_prompts(tmp_path)
    with pytest.raises(FlowPromptsError, match="no such flows folder"):
        load_flow_prompts(tmp_path / "absent")


def test_a_flow_serving_a_new_pack_loads_with_the_packs_fallbacks(tmp_path: pathlib.Path) -> None:
    """A pack made by `ivr dialects new cdo --from cmn` has no text of its own: the flow that lists it is
    covered by its fallback, which `ivr prompts check` and the recording line must know to read the flow."""
    (tmp_path / "greet.yaml").write_text(
        'id: greet\nnumbers: ["95519"]\ndialects: [cmn, cdo]\ndefault_dialect: cdo\nqueues: [general]\n'
        "prompts:\n  hi: {cmn: 您好}\nnodes:\n  hello: {type: hangup, prompt: hi}\n", encoding="utf-8")
    with pytest.raises(FlowPromptsError, match="no 'cdo' text and no fallback covers it"):
        load_flow_prompts(tmp_path)
    (flow,) = load_flow_prompts(tmp_path, {"cmn": (), "cdo": ("cmn",)})
    assert flow.dialects == ("cmn", "cdo")
