"""A 2,000 INVITEs/s flood from one source (127.0.0.1) for 12 s while the trunk (127.0.0.2) places 40
calls with SIPp: at least 39 complete and the engine's RSS grows by less than 300 MB. The edge is set
as in production (bench.flood.EDGE: the trunk trusted, INVITEs from elsewhere 403, per-source buckets)."""

from __future__ import annotations

import pathlib

import pytest

from bench.flood import flood_run, flooded_engine
from ivr.testing import peers
from tests.integration.engine.conftest import RunningEngine, stop_engine

pytestmark = [pytest.mark.integration, pytest.mark.skipif(peers.SIPP.missing, reason=peers.SIPP.reason)]


def test_flood_from_one_source_leaves_the_trunks_calls_alone(tmp_path: pathlib.Path) -> None:
    proc, port = flooded_engine(tmp_path)
    engine = RunningEngine(port, 0, tmp_path / "ivr.db", proc, tmp_path / "engine.log")
    try:
        run = flood_run(proc.pid, port, rate=2000, seconds=12.0, calls=40, workdir=tmp_path)
        assert proc.poll() is None, "the engine died under the flood"
    finally:
        stop_engine(engine)
    assert run.achieved_rate >= 1600, f"the flooder reached only {run.achieved_rate:.0f}/s (machine too loaded?)"
    assert run.successful >= 39, run
    assert run.rss_growth_mb < 300, run
