"""Campaign files: the demo file loads; every mistake is reported at its file:line:col."""

# ruff: noqa: E501 - tables of exact expected messages read best one per line
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.flow.model import Weekday
from ivr.outbound.errors import CampaignLoadError
from ivr.outbound.loader import campaign_json_schema, check_campaign, load_campaign, load_text
from ivr.outbound.model import OnMachine, Result

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
id: c1
flow: revisit
trunk: "sip:{number}@127.0.0.1:5070"
"""


def problems(text: str) -> list[str]:
    return [str(p) for p in load_text(text, "c.yaml").problems]


def test_demo_campaign_loads() -> None:
    campaign = load_campaign(ROOT / "campaigns" / "revisit.yaml", flow_exists=lambda name: name == "revisit")
    spec = campaign.spec
    assert spec.id == "revisit" and spec.priority == 5
    assert spec.windows[1].days == (Weekday.SAT,)
    busy = spec.retry.rule(Result.BUSY)
    assert busy is not None and busy.max_attempts == 3
    assert spec.retry.rule(Result.REJECTED) is None
    assert spec.on_machine is OnMachine.RETRY
    assert campaign.targets_file is not None and campaign.targets_file.is_file()


def test_defaults_are_enough() -> None:
    result = load_text(GOOD, "c.yaml")
    assert result.problems == () and result.campaign is not None
    assert result.campaign.spec.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("pacing: {calls_per_s: fast}\n", "c.yaml:4:23: campaign field 'pacing.calls_per_s' must be a number, got 'fast'"),
        ("windows:\n  - {from: \"06:00\", to: \"20:00\"}\n",
         "c.yaml:5:5: calling window 1 reaches into the night: calls may start only between 08:00 and 21:00"),
        ("windows:\n  - {from: \"12:00\", to: \"10:00\"}\n", "c.yaml:5:25: calling window 1 ends at or before it starts"),
        ("retry:\n  busy: {delay_s: 10}\n", "c.yaml:5:9: campaign field 'retry.busy' is missing required field 'max_attempts'"),
        ("on_machin: retry\n", "c.yaml:4:1: campaign has unknown field 'on_machin' (did you mean 'on_machine'?)"),
        ("timezone: Asia/Shangai\n", "c.yaml:4:11: campaign field 'timezone' has unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)"),
        ("windows:\n  - {from: \"09:00\", to: \"12:00\", days: [mon, fry]}\n",
         "c.yaml:5:46: campaign field 'windows.0.days.1' has unknown value 'fry' (did you mean 'fri'?); expected one of: mon, tue, wed, thu, fri, sat, sun"),
        ("on_machine: leave_message\n", "c.yaml:4:13: on_machine: leave_message needs a machine_flow (the message to leave)"),
        ("targets: nowhere.csv\n", "c.yaml:4:10: targets file 'nowhere.csv' not found next to the campaign file"),
        ("pacing: {max_concurrent: 0}\n", "c.yaml:4:26: pacing max_concurrent must be at least 1"),
    ],
)
def test_problems_have_file_line_col(extra: str, expected: str) -> None:
    assert expected in problems(GOOD + extra)


def test_trunk_needs_the_number() -> None:
    assert problems(GOOD.replace("{number}", "x")) == [
        "c.yaml:3:8: trunk must contain {number}, the callee's number"
    ]


def test_yaml_syntax_error_is_placed() -> None:
    (problem,) = problems("id: [c1\nflow: x\n")
    assert problem.startswith("c.yaml:1:5: ")


def test_unknown_flow_is_an_error() -> None:
    result = load_text(GOOD, "c.yaml", flow_exists=lambda name: False)
    assert [str(p) for p in result.problems] == ["c.yaml:2:7: no flow has id 'revisit'"]


def test_load_campaign_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: c1\n", encoding="utf-8")
    with pytest.raises(CampaignLoadError) as info:
        load_campaign(path)
    assert len(info.value.problems) == 2
    assert "missing required field 'flow'" in str(info.value)


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    result = check_campaign(tmp_path / "missing.yaml")
    assert result.campaign is None and "cannot read campaign file" in result.problems[0].message


def test_json_schema_describes_the_file() -> None:
    schema = campaign_json_schema()
    json.dumps(schema)
    assert schema["required"] == ["id", "flow", "trunk"]
    assert schema["additionalProperties"] is False
    window = schema["$defs"]["CallingWindow"]
    assert set(window["properties"]) == {"from", "to", "days"}
    assert schema["properties"]["on_machine"] == {"enum": ["leave_message", "retry", "hang_up"]}
