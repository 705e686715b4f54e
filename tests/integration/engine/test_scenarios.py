"""Every demo scenario (tests/scenarios/*.yaml) as a real SIP call into `ivr serve`, all at once.

Each call is judged from the engine's own record (queue, intent, dialect, outcome, breakpoint,
survey score, path). The calls run concurrently through one test caller, as `ivr scenario run`
places them, so the whole set takes about as long as its longest call (~2 minutes). At night (22:00-08:00
Beijing) the complaints team is closed: a complaint caller is asked to leave a message instead of being queued,
and that is what the complaint scenarios must then show.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import pytest

from ivr.testing import peers
from ivr.testing.caller import TestCaller
from ivr.testing.scenario import Scenario, load_many, render_failures, run_scenarios
from tests.integration.engine.conftest import ROOT, RunningEngine
from tests.integration.engine.hours import night_now

SHED_AFTER_S = 8.0
"""The engine's decode-lag bound for this module (`asr_max_lag_s`, 2 s by default). This file is the suite's longest,
so it starts first, while every other test worker boots its engine and decoder processes on the same two cores: a
turn shed there (the overload policy, tested on its own in tests/unit/speech) failed a flow check once (a caller's
need shed at 2.9 s of lag, 2026-12-07). 8 s is the turn's own decode timeout (`ivr.engine.turn.DECODE_TIMEOUT_S`)."""

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(peers.FESTIVAL.missing, reason=peers.FESTIVAL.reason),  # English callers
    pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason),  # Chinese callers
    pytest.mark.timeout(400),
    pytest.mark.engine_args("--set", f"asr_max_lag_s={SHED_AFTER_S}"),
]

FILES = sorted((ROOT / "tests" / "scenarios").glob("*.yaml"))
MIN_FILES = 10
"""The demo set holds more: a glob finding fewer means a moved folder, and must fail, not pass on nothing."""


def at_this_hour(scenario: Scenario, night: bool) -> Scenario:
    """The scenario as it must go now: at night flows/hotline.yaml's `complaint_hours` sends a caller who wants the
    complaints team to a message (`night_message`, `leave_complaint`) instead of its queue."""
    expect = scenario.expect
    if not night or expect.queue != "complaints":
        return scenario
    by_night = (*expect.path[: expect.path.index("want_complaints") + 1], "complaint_hours", "night_message",
                "leave_complaint")
    return dataclasses.replace(scenario, expect=dataclasses.replace(expect, queue="", path=by_night))


def test_the_demo_scenario_files_are_found() -> None:
    assert len(FILES) >= MIN_FILES, f"only {len(FILES)} scenario files under tests/scenarios"


async def test_every_demo_scenario_passes(engine: RunningEngine) -> None:
    night = night_now()
    scenarios = [at_this_hour(scenario, night) for scenario in load_many(FILES)]
    base = 44000 + (os.getpid() % 40) * 100  # off the other integration tests' RTP ports
    caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        run = await run_scenarios(scenarios, engine.uri, cps=4.0, api=engine.api, caller=caller)
    finally:
        await caller.close()
    assert len(run.results) == len(FILES), "each file's scenario placed one call"
    assert run.passed, "\n".join(render_failures(run))


def test_scenario_files_cover_the_demo_hotline_paths() -> None:
    """Every queue and self-service ending of flows/hotline.yaml has a scenario that expects it."""
    scenarios = load_many(FILES)
    queues = {s.expect.queue for s in scenarios}
    assert {"claims", "service", "complaints", "general", "elderly"} <= queues
    nodes = {node for s in scenarios for node in s.expect.path}
    for node in ("main_menu", "english", "fetch_policy", "dip_failed", "policy_not_found", "survey",
                 "green_channel", "dialect_hak", "loan", "payment", "surrender", "goodbye"):
        assert node in nodes, f"no scenario goes through {node!r}"
    assert pathlib.Path(ROOT / "flows" / "hotline.yaml").exists()
