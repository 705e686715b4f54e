"""The demo hotline end to end: the simulated caller, the in-process demo back end, the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.flow.commands import validate_files
from ivr.testing.flowcommands import run_flow_tests, simulate_call
from ivr.testing.flowtest import run_files

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(ROOT / "flows" / "hotline.yaml")
FLOW_TESTS = sorted(str(p) for p in (ROOT / "flows" / "tests").glob("*.yaml"))


def simulate(*turns: tuple[str, str], caller: str = "13800138000", time: str | None = None) -> dict:
    out = io.StringIO()
    assert simulate_call(HOTLINE, turns, caller=caller, time=time, backend=None, as_json=True, out=out) == 0
    return json.loads(out.getvalue())


def test_every_flow_file_validates() -> None:
    out = io.StringIO()
    assert validate_files(sorted(str(p) for p in (ROOT / "flows").glob("*.yaml")), out=out) == 0, (
        out.getvalue()
    )


async def test_flow_test_files_pass() -> None:
    assert FLOW_TESTS
    report = await run_files(FLOW_TESTS)
    assert report.ok, "\n".join(report.lines())
    assert len(report.passed) >= 15


async def test_a_wrong_expectation_fails_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "wrong.yaml"
    bad.write_text(
        f"flow: {HOTLINE}\ncases:\n  - name: claim\n"
        "    inputs: [{say: 我要报案}]\n    expect: {queue: service}\n",
        encoding="utf-8",
    )
    report = await run_files([str(bad)])
    assert not report.ok
    assert report.failed[0][1] == ["queue: expected 'service', got 'claims'"]


def test_a_typo_in_a_flow_test_file_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text(f"flow: {HOTLINE}\ncases:\n  - name: x\n    expectt: {{}}\n", encoding="utf-8")
    out = io.StringIO()
    assert run_flow_tests([str(bad)], out=out) == 1
    assert (
        f"{bad}:4:5: flow field 'cases.0' has unknown field 'expectt' (did you mean 'expect'?)"
        in out.getvalue()
    )


def test_claim_by_speech_ends_at_the_claims_queue() -> None:
    result = simulate(("say", "我要报案"))
    assert (result["queue"], result["outcome"], result["intent"]) == ("claims", "to-agent", "claim")
    assert result["queue_requests"][0]["context"]["customer_name"] == "张伟"  # from the demo back end


def test_key_zero_ends_at_a_human() -> None:
    result = simulate(("keys", "0"))
    assert result["queue"] == "general" and result["outcome"] == "to-agent"


def test_elderly_demo_caller_gets_the_dialect_menu_and_the_green_channel() -> None:
    from ivr.demo_backend import ELDERLY_CALLER

    result = simulate(("keys", "0"), caller=ELDERLY_CALLER)
    prompts = [s["prompt"] for s in result["spoken"]]
    assert "elderly_menu" in prompts
    assert result["dialect"] == "yue"
    request = result["queue_requests"][0]
    assert (request["queue"], request["priority"]) == ("elderly", 10)


def test_failing_data_dip_ends_at_a_human_with_a_breakpoint() -> None:
    from ivr.demo_backend import FAILING_POLICY

    result = simulate(("say", "查询保单"), ("keys", FAILING_POLICY + "#"))
    assert result["breakpoint"] == "fetch_policy"
    assert any(e["breakpoint"] and e["kind"] == "data_dip_failed" for e in result["events"])
    assert result["queue"] == "service" and result["outcome"] == "to-agent"


def test_the_ivr_command_prints_steps_and_the_outcome_line() -> None:
    ivr = Path(sys.executable).with_name("ivr")
    proc = subprocess.run(
        [str(ivr), "simulate", HOTLINE, "--say", "我要报案"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "outcome: queued claims"
    assert "  intent: claim 1.00 (keyword)" in lines
    assert "[queue_claims] queue" in lines
