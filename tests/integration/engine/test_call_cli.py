"""`ivr call` as a tester runs it: exit 0 when every expectation holds, 1 with a clear message when not."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.engine.conftest import ROOT, RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]


def ivr_call(engine: RunningEngine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", "call", engine.uri, "--api", engine.api, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def test_keys_zero_expecting_general_passes_and_expecting_claims_fails_clearly(engine: RunningEngine) -> None:
    # --wait 12: from key 0 the caller is queued within seconds (the transfer announcement); the record is
    # what is judged, so the default 20 s on the line after the key buys nothing.
    # The two testers call at once (two processes, two callers), as two people on a team would.
    with ThreadPoolExecutor(2) as testers:
        passing = testers.submit(ivr_call, engine, "--from", "13700000401", "--keys", "0",
                                 "--expect-queue", "general", "--wait", "12")
        failing = testers.submit(ivr_call, engine, "--from", "13700000402", "--keys", "0",
                                 "--expect-queue", "claims", "--wait", "12")
        passed, failed = passing.result(), failing.result()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS" in passed.stdout and "queue=general" in passed.stdout

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL: expected queue 'claims', but the call had queue 'general'" in failed.stdout


def test_spoken_claim_lands_in_claims(engine: RunningEngine) -> None:
    result = ivr_call(engine, "--from", "13700000403", "--say", "I want to file a claim",
                      "--expect-queue", "claims", "--expect-intent", "claim", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"passed": true' in result.stdout


def test_usage_errors_exit_2(engine: RunningEngine) -> None:
    result = subprocess.run([sys.executable, "-m", "ivr.cli", "call"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "uri" in result.stderr
