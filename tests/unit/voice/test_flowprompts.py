from __future__ import annotations

import pathlib

import pytest

from ivr.voice import FlowPromptsError, flow_prompts_from_mapping, load_flow_prompts


def test_reads_texts_by_prompt_and_dialect() -> None:
    flow = flow_prompts_from_mapping(
        {
            "id": "hotline",
            "dialects": ["cmn", "en"],
            "prompts": {"hi": {"cmn": "您好", "en": "Hi"}, "bye": "再见"},
        },
        "file-stem",
    )
    assert flow.name == "hotline" and flow.dialects == ("cmn", "en")
    assert flow.texts == {"hi": {"cmn": "您好", "en": "Hi"}, "bye": {"cmn": "再见"}}


@pytest.mark.parametrize(
    ("doc", "dialects"),
    [
        ({"dialects": {"cmn": {}, "yue": {}}}, ("cmn", "yue")),
        ({"languages": [{"code": "en"}, {"code": "cmn"}]}, ("en", "cmn")),
        ({"dialects": "yue"}, ("yue",)),
        ({}, ()),
    ],
    ids=["mapping", "languages", "single", "absent"],
)
def test_dialect_declarations_in_several_shapes(doc: dict[str, object], dialects: tuple[str, ...]) -> None:
    assert flow_prompts_from_mapping(doc, "f").dialects == dialects


def test_a_plain_string_prompt_is_the_default_dialects_text() -> None:
    flow = flow_prompts_from_mapping({"default_dialect": "yue", "prompts": {"hi": "你好"}}, "f")
    assert flow.texts == {"hi": {"yue": "你好"}}


def test_bad_prompts_are_refused_naming_the_prompt() -> None:
    with pytest.raises(FlowPromptsError, match="f: prompt 'hi' must be a text or a mapping"):
        flow_prompts_from_mapping({"prompts": {"hi": ["a"]}}, "f")
    with pytest.raises(FlowPromptsError, match="'prompts' must map prompt ids"):
        flow_prompts_from_mapping({"prompts": ["hi"]}, "f")


def test_load_reads_top_level_yaml_files_only(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a\nprompts: {hi: {cmn: 您好}}\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("prompts: {}\n", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "c.yaml").write_text("- not a flow\n", encoding="utf-8")
    assert [f.name for f in load_flow_prompts(tmp_path)] == ["a", "b"]


def test_load_errors_name_the_file_and_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: a\nprompts: {hi: [\n", encoding="utf-8")
    with pytest.raises(FlowPromptsError, match=r"bad\.yaml:3:1: YAML syntax error"):
        load_flow_prompts(tmp_path)
    with pytest.raises(FlowPromptsError, match="no such flows folder"):
        load_flow_prompts(tmp_path / "absent")
