"""`ivr call` as a tester runs it: exit 0 when every expectation holds, 1 with a clear message when not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.engine.conftest import ROOT, RunningEngine, needs_tts

pytestmark = [pytest.mark.integration, needs_tts]

# `ivr call` stays 20 s on the line after the last step (its default --wait): key 0 reaches queue general ~6 s
# after the key by day and ~15 s at night, when the night notice (9 s; 22:00-08:00 Beijing) comes first.
CALLS = {
    "keys_expecting_general": ("--from", "13700000401", "--keys", "0", "--expect-queue", "general"),
    "keys_expecting_claims": ("--from", "13700000402", "--keys", "0", "--expect-queue", "claims"),
    "spoken_claim": ("--from", "13700000403", "--say", "I want to file a claim", "--expect-queue", "claims",
                     "--expect-intent", "claim", "--json"),
}


def ivr_call(engine: RunningEngine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", "call", engine.uri, "--api", engine.api, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def called(engine: RunningEngine) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Every `ivr call` of the module, run at once (a process each), as testers on a team would."""
    with ThreadPoolExecutor(len(CALLS)) as testers:
        running = {name: testers.submit(ivr_call, engine, *args) for name, args in CALLS.items()}
        yield {name: future.result() for name, future in running.items()}


def test_keys_zero_expecting_general_passes_and_expecting_claims_fails_clearly(
    called: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    passed, failed = called["keys_expecting_general"], called["keys_expecting_claims"]
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS" in passed.stdout and "queue=general" in passed.stdout

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL: expected queue 'claims', but the call had queue 'general'" in failed.stdout


def test_spoken_claim_lands_in_claims(called: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = called["spoken_claim"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"passed": true' in result.stdout


def test_usage_errors_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "ivr.cli", "call"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "uri" in result.stderr
