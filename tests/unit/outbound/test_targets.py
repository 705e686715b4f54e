"""Targets from CSV and API bodies; the do-not-call list."""

# ruff: noqa: E501 - tables of exact expected messages read best one per line
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.outbound.errors import TargetError
from ivr.outbound.targets import make_target, parse_targets_csv, read_do_not_call, read_targets_csv

ROOT = Path(__file__).resolve().parents[3]


def test_demo_targets_read() -> None:
    targets = read_targets_csv(ROOT / "campaigns" / "revisit-targets.csv")
    assert [t.target_id for t in targets] == ["P1001", "P1002", "P1003"]
    first = targets[0]
    assert first.number == "13800000001" and first.timezone == "Asia/Shanghai"
    assert first.variables["name"] == "王芳" and first.variables["id_last4"] == "1234"
    assert "number" not in first.variables and targets[1].timezone is None


def test_rows_without_id_are_numbered_and_numbers_normalized() -> None:
    targets = parse_targets_csv("number,name\n138 0000-0001,A\n(+86)13800000002,B\n")
    assert [(t.target_id, t.number) for t in targets] == [("1", "13800000001"), ("2", "+8613800000002")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nA\n", "t.csv:1: the header row must have a 'number' column"),
        ("number,name\n13800000001,A\nabc,B\n", "t.csv:3: number 'abc' is not a dialable number"),
        ("number,timezone\n13800000001,Mars/Base\n", "t.csv:2: timezone 'Mars/Base' is not a known time zone"),
        ("number,bad-name\n13800000001,x\n", "t.csv:2: column 'bad-name' is not a variable name (letters, digits and _)"),
        ("id,number\nA,13800000001\nA,13800000002\n", "t.csv:3: duplicate id 'A' (first at line 2)"),
        ("number\n13800000001,extra\n", "t.csv:2: more values than header columns"),
    ],
)
def test_bad_rows_name_their_line(text: str, message: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_targets_csv(text, "t.csv")
    assert str(info.value) == message


def test_api_target() -> None:
    target = make_target({"number": "13800000001", "name": "王芳", "amount": 12}, default_id="x")
    assert target.target_id == "x" and target.variables == {"name": "王芳", "amount": "12"}
    with pytest.raises(TargetError, match="variable 'nested' must be a single value"):
        make_target({"number": "13800000001", "nested": {"a": 1}}, default_id="x")


def test_do_not_call_file() -> None:
    assert read_do_not_call(["# header", "", "138-0000-0099  # asked 2026-11-02", "13800000100"]) == {
        "13800000099", "13800000100"}
