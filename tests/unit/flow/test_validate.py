from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.flow.commands import validate_files
from ivr.flow.errors import Severity
from ivr.flow.jsonschema import flow_json_schema, yaml_to_json
from ivr.flow.loader import check_file, load_text

from .conftest import HOTLINE, ROOT

BROKEN = sorted((ROOT / "tests" / "data" / "flows" / "broken").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (.+)$")


def test_there_are_at_least_thirty_broken_flows() -> None:
    assert len(BROKEN) >= 30


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_flow_reports_its_expected_problem(path: Path) -> None:
    match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name} has no '# expect:' first line"
    out = io.StringIO()
    assert validate_files([str(path)], out=out) == 1
    assert f"{path}:{match.group(1)}" in out.getvalue().splitlines()


def test_hotline_is_valid_and_dialect_gaps_are_only_warnings() -> None:
    result = check_file(HOTLINE, classifier_factory=None)
    assert result.errors == ()
    assert result.warnings and all(p.severity is Severity.WARNING for p in result.warnings)
    assert any("falls back to 'cmn'" in p.message for p in result.warnings)


def test_validate_exit_codes_and_format() -> None:
    out = io.StringIO()
    assert validate_files([str(HOTLINE)], out=out) == 0
    assert out.getvalue().startswith(f"{HOTLINE}: ok")
    out = io.StringIO()
    assert validate_files([str(HOTLINE), str(BROKEN[0])], out=out) == 1


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = check_file(tmp_path / "nope.yaml", classifier_factory=None)
    assert result.flow is None
    assert "cannot read flow file" in result.errors[0].message


def test_a_fallback_chain_turns_a_gap_into_a_warning_or_an_error() -> None:
    text = HOTLINE.read_text(encoding="utf-8")
    # With no fallback for Cantonese, prompts without yue text are errors.
    strict = load_text(text, "h.yaml", fallbacks={"yue": (), "en": (), "cmn": ()}, classifier_factory=None)
    assert any("has no 'yue' text and no fallback covers it" in p.message for p in strict.errors)
    relaxed = load_text(text, "h.yaml", classifier_factory=None)
    assert relaxed.errors == ()


def test_published_json_schema_accepts_the_hotline_and_rejects_a_typo() -> None:
    schema = flow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml_to_json(HOTLINE.read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    data["nodes"]["need"]["promt"] = data["nodes"]["need"].pop("prompt")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


# --- robustness: random edits of the hotline never crash the validator -----------------------------

HOTLINE_LINES = HOTLINE.read_text(encoding="utf-8").splitlines()
TOKENS = [
    "",
    " ",
    ":",
    "-",
    "{",
    "}",
    "[",
    "]",
    "'",
    '"',
    "&a",
    "*a",
    "!!python/object:os.system",
    "0",
    "nodes",
    "type: menu",
    "next: nowhere",
    "\t",
    "é",
    "yes",
    "null",
    "~",
    "1e999",
    "<<: *a",
    "{{",
    "#",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(HOTLINE_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "indent", "truncate", "swap"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(TOKENS)) + draw(st.text(max_size=8)))
        elif op == "replace":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.sampled_from(TOKENS)) + line[at + draw(st.integers(0, 6)) :]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["  ", " ", ""])) + lines[i].lstrip(" ")
        elif op == "truncate":
            lines = lines[:i]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        if not lines:
            lines = [""]
    return "\n".join(lines)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_hotline_gives_problems_never_exceptions(text: str) -> None:
    result = load_text(text, "mutant.yaml", classifier_factory=None)
    for problem in result.problems:
        assert problem.line >= 1 and problem.col >= 1
        assert problem.message
    if result.flow is None:
        assert result.errors, "a refused flow must say why"


def test_phrases_that_cannot_train_the_classifier_are_refused_with_a_location() -> None:
    """Filler-only phrases leave an intent with nothing to learn: a problem at the intents, never
    an exception out of the loader (which would stop a hot reload or the engine's start)."""
    broken = HOTLINE.read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(broken) if line.startswith("  complaint:"))
    end = next(i for i in range(start + 1, len(broken)) if broken[i].startswith("  agent:"))
    broken[start:end] = ["  complaint:", "    label: {cmn: 投诉}", "    phrases:", "      cmn: [您好, 嗯]"]
    result = load_text("\n".join(broken), "bad.yaml")
    assert result.flow is None
    (problem,) = [p for p in result.problems if "classifier" in p.message]
    assert problem.path == "bad.yaml" and problem.line == next(
        i for i, line in enumerate(broken, start=1) if line.startswith("intents:")
    )
    assert "complaint" in problem.message


def test_keywords_for_an_intent_the_node_does_not_map_are_a_warning() -> None:
    text = (ROOT / "tests" / "data" / "flows" / "broken" / "ask_unknown_intent.yaml").read_text(encoding="utf-8")
    unmapped = "intents: {agent: agent}\n    keywords: {claim: [报案]}"
    text = text.replace("intents: {clam: claims, agent: agent}", unmapped)
    result = load_text(text, "kw.yaml", classifier_factory=None)
    assert result.flow is not None, [str(p) for p in result.problems]
    assert [p.message for p in result.warnings if "keywords" in p.message] == [
        "node 'need' has keywords for 'claim', which it maps to no node: they are ignored"
    ]


def test_a_human_key_without_a_human_node_is_a_warning() -> None:
    text = (ROOT / "tests" / "data" / "flows" / "broken" / "ask_unknown_intent.yaml").read_text(encoding="utf-8")
    text = text.replace("intents: {clam: claims, agent: agent}", "intents: {claim: claims, agent: agent}")
    result = load_text(text, "human.yaml", classifier_factory=None)
    assert result.flow is not None and result.flow.spec.human is None
    warned = [p for p in result.warnings if "no 'human' node" in p.message]
    assert {p.message.split()[1] for p in warned} == {"'menu'", "'need'"}
    with_human = load_text(text.replace("nodes:\n", "human: agent\nnodes:\n", 1), "human.yaml", classifier_factory=None)
    assert not [p for p in with_human.warnings if "no 'human' node" in p.message]


def test_validate_checks_with_the_dialect_packs_fallbacks_as_the_engine_loads() -> None:
    """dialects/en.yaml lets Mandarin text stand in for missing English, as the engine does; with
    the built-in chains (no packs) a missing English text has no stand-in and is an error."""
    from ivr.voice.dialects import load_dialects

    path = str(ROOT / "tests" / "data" / "flows" / "broken" / "missing_dialect_text.yaml")
    packs = load_dialects(ROOT / "dialects").fallbacks()
    assert packs["en"] == ("cmn",)
    out = io.StringIO()
    assert validate_files([path], warnings=True, fallbacks=packs, out=out) == 0
    assert "prompt 'menu' has no en text; falls back to 'cmn'" in out.getvalue()
    assert validate_files([path], out=io.StringIO()) == 1


UNCLOSED_AT_3 = "id: f\nnodes:\n  start: {type: hangup, prompt: [bye\n  other:\n    type: hangup\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            UNCLOSED_AT_3,
            "f.yaml:3:33: YAML syntax error: a flow sequence opened here is not closed: "
            "expected ',' or ']', but got ':' at line 4, column 8",
        ),
        (
            "id: f\nprompts: {bye: {cmn: 再见}\nnodes: {}\n",
            "f.yaml:2:10: YAML syntax error: a flow mapping opened here is not closed: "
            "expected ',' or '}', but got '<scalar>' at line 3, column 1",
        ),
        (
            "id: f\ndescription: 'no end\nnodes: {}\n",
            "f.yaml:2:14: YAML syntax error: a quoted scalar opened here is not closed: "
            "found unexpected end of stream at line 4, column 1",
        ),
        (
            "id: f\nnodes:\n  - x\n bad: 1\n",
            "f.yaml:4:2: YAML syntax error: expected <block end>, but found '<block mapping start>' "
            "(a block mapping from line 1, column 1)",
        ),
    ],
    ids=["unclosed-bracket", "unclosed-brace", "unclosed-quote", "bad-indent"],
)
def test_yaml_syntax_error_names_where_the_construct_opened_and_where_it_broke(text: str, expected: str) -> None:
    (problem,) = load_text(text, "f.yaml", classifier_factory=None).problems
    assert str(problem) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2027, 11, 30), []),
        (dt.date(2027, 12, 1), ["lists no holiday in 2028 yet (the last is 2027-10-03): from 2028-01-01"] * 2),
        (dt.date(2028, 1, 2), ["lists no holiday in 2028 (the last is 2027-10-03): this year's holidays"] * 2),
        (None, []),
    ],
    ids=["november", "december: next year's missing", "the new year: run out", "no date given"],
)
def test_a_holiday_list_that_runs_out_is_a_warning_on_both_schedule_nodes(
    today: dt.date | None, expected: list[str]
) -> None:
    # The hotline's two schedule nodes share one list (a YAML alias): both are named, at the list's line.
    result = load_text(HOTLINE.read_text(encoding="utf-8"), "h.yaml", classifier_factory=None, today=today)
    found = [p for p in result.warnings if "holiday" in p.message]
    assert [next(part for part in expected if part in p.message) for p in found] == expected
    assert {p.message.split("'")[1] for p in found} == ({"hours", "complaint_hours"} if expected else set())
    assert all(p.severity is Severity.WARNING and p.line == found[0].line for p in found)
    assert result.flow is not None, "a warning: the flow still loads"
