"""Scenario files: YAML → typed scenarios once, every problem reported with file:line:col."""

from __future__ import annotations

import pathlib

import pytest

from ivr.testing.caller import AwaitPrompt, DtmfMethod, Keys, Pause, Say
from ivr.testing.scenario import Expect, ScenarioError, check, load_many, load_scenarios, plan

ROOT = pathlib.Path(__file__).resolve().parents[3]


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_steps_become_typed_and_listen_before_answering(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, """
name: claim
caller: "13700000001"
dialect: en
steps:
  - say: I want to file a claim
  - keys: "0"
    barge_in: true
    dtmf: info
  - pause: 2.5
  - listen: 2
    timeout_s: 9
    quiet_s: 3
expect: {queue: claims, breakpoint: "", survey_score: 7, path: [need, queue_claims]}
""")
    [scenario] = load_scenarios(path)
    assert scenario.steps == (
        AwaitPrompt(quiet_s=1.5), Say("I want to file a claim", "en"), Keys("0", DtmfMethod.INFO), Pause(2.5),
        AwaitPrompt(9.0, 3.0), AwaitPrompt(9.0, 3.0),
    )
    assert scenario.expect == Expect(queue="claims", breakpoint="", survey_score=7, path=("need", "queue_claims"))
    assert scenario.source == f"{path}:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nsteps:\n  - keys: '1x'\n", "s.yaml:3:11: scenario 'x' step 1 keys: 'x' is not a phone key"),
        ("name: x\nsteps:\n  - shout: hi\n", "s.yaml:3:5: scenario 'x' step 1: unknown key 'shout'"),
        ("name: x\nsteps:\n  - say: hi\n    keys: '1'\n", "s.yaml:3:5: scenario 'x' step 1: expected exactly one of"),
        ("name: x\nsteps:\n  - pause: soon\n", "s.yaml:3:12: scenario 'x' step 1 pause: expected a number"),
        ("name: x\nsteps:\n  - keys: '1'\n    dtmf: smoke\n",
         "s.yaml:4:11: scenario 'x' step 1 dtmf: expected rfc4733"),
        ("name: x\nsteps:\n  - pause: 1\n    dtmf: info\n", "s.yaml:4:11: scenario 'x' step 1: 'dtmf' does not apply"),
        ("name: x\nsteps: []\nexpect: {queeu: a}\n", "s.yaml:3:10: scenario 'x' expect: unknown key 'queeu'"),
        ("name: x\ncaller: bob\nsteps: []\n", "s.yaml:2:9: scenario 'x' caller: expected a phone number"),
        ("name: x\n", "s.yaml:1:1: scenario 'x': missing 'steps'"),
        ("name: [x\n", "s.yaml:2:1: not valid YAML"),
    ],
    ids=["bad-key", "unknown-step", "two-actions", "pause-text", "dtmf-method", "option-misplaced",
         "expect-typo", "caller-not-number", "no-steps", "broken-yaml"],
)
def test_problems_name_file_line_and_column(tmp_path: pathlib.Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(write(tmp_path, text))
    assert any(p.endswith(message) or message in p for p in caught.value.problems), caught.value.problems
    assert str(caught.value.problems[0]).startswith(str(tmp_path / "s.yaml"))


def test_every_problem_of_every_file_is_reported_together(tmp_path: pathlib.Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("name: a\nsteps:\n  - keys: 'z'\n  - pause: -1\n")
    b = tmp_path / "b.yaml"
    b.write_text("scenarios:\n  - {name: b, steps: [{listen: 0}]}\n"
                 "  - {name: c, steps: []}\n  - {name: c, steps: []}\n")
    with pytest.raises(ScenarioError) as caught:
        load_many([a, b])
    problems = caught.value.problems
    assert len([p for p in problems if p.startswith(str(a))]) == 2
    assert any("listen: expected a whole number from 1" in p for p in problems)
    assert any("name used twice" in p for p in problems)


def test_shipped_scenarios_load() -> None:
    scenarios = load_many(sorted((ROOT / "tests" / "scenarios").glob("*.yaml")))
    assert len(scenarios) >= 15
    callers = [s.caller for s in scenarios]
    assert len(set(callers)) == len(callers), "each scenario calls from its own number (dialect memory)"


def test_plan_cycles_through_scenarios(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "scenarios:\n  - {name: a, steps: [listen]}\n  - {name: b, steps: [listen]}\n")
    scenarios = load_scenarios(path)
    assert [s.name for s in plan(scenarios, 5)] == ["a", "b", "a", "b", "a"]
    assert [s.name for s in plan(scenarios, None)] == ["a", "b"]


RECORD = {"queue": "service", "intent": "", "dialect": "cmn", "outcome": "to-agent", "survey_score": None,
          "breakpoint_node": "fetch_policy", "path": ["need", "main_menu", "policy_query", "fetch_policy",
                                                      "dip_failed", "queue_service"]}


@pytest.mark.parametrize(
    ("expect", "failure"),
    [
        (Expect(queue="service", breakpoint="fetch_policy", path=("policy_query", "queue_service")), None),
        (Expect(queue="claims"), "expected queue 'claims', but the call had queue 'service'"),
        (Expect(breakpoint=""), "expected no breakpoint, but the call had breakpoint 'fetch_policy'"),
        (Expect(survey_score=10), "expected survey_score 10, but the call had None"),
        (Expect(path=("queue_service", "policy_query")), "expected the call to pass through queue_service → "
                                                         "policy_query in order"),
    ],
    ids=["all-hold", "queue", "breakpoint", "survey", "path-order"],
)
def test_check_says_what_was_expected_and_seen(expect: Expect, failure: str | None) -> None:
    failures = check(expect, RECORD, "")
    assert (failures == []) if failure is None else any(f.startswith(failure) for f in failures), failures


def test_check_without_a_record_says_why() -> None:
    assert check(Expect(path=("need",)), None, "HTTP 404") == [
        "no call record to check expectations against: HTTP 404"]
