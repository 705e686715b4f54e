"""`ivr serve` started as `make run` starts it: the working directory is the site, `--flows flows`.

The site is a temporary copy of the repository's flows/, dialects/, prompts/ and config/ (and its
prompt render cache, so start-up renders only what an edit changes), so a test may edit the served
flow. `symlinked` serves the same site through a flows folder that is a symlink to another folder.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ivr.testing.caller import TestCaller
from tests.integration.engine.conftest import ROOT, RunningEngine, start_engine, stop_engine


@dataclass
class Site:
    """A running engine and the site it serves."""

    root: pathlib.Path
    engine: RunningEngine

    @property
    def flow(self) -> pathlib.Path:
        """The served hotline flow, as ops staff edit it: through the flows folder."""
        return self.root / "flows" / "hotline.yaml"

    def hotline(self) -> dict[str, Any]:
        """The hotline's entry in `/api/flows` (the engine's `get` sends its bearer token)."""
        (entry,) = [f for f in self.engine.get("/api/flows")["flows"] if f["flow_id"] == "hotline"]
        return dict(entry)

    def wait_for_hotline(self, what: str, until: Any, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        entry = self.hotline()
        while not until(entry):
            if time.monotonic() > deadline:
                raise AssertionError(f"/api/flows never showed {what}: {entry}\n{self.log_tail()}")
            time.sleep(0.2)
            entry = self.hotline()
        return entry

    def wait_loaded_by_every_worker(self, version: str, timeout_s: float = 30.0) -> None:
        """Until the flow every worker of the engine last logged loaded is `version`. /api/flows is the answering
        worker's view, a call may go to any worker, and each reloads on its own: under load one was 1.3 s behind."""
        deadline = time.monotonic() + timeout_s
        while True:
            workers = {e.get("worker") for e in self.log_events("engine_ready")}
            last = {e.get("worker"): e.get("version") for e in self.log_events("flow_loaded")}  # in log order
            behind = {worker for worker in workers if last.get(worker) != version}
            if workers and not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {sorted(map(str, behind))} never loaded {version}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        return self.engine.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def log_events(self, event: str) -> list[dict[str, Any]]:
        lines = self.engine.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [e for e in (json.loads(x) for x in lines if f'"{event}"' in x) if e.get("event") == event]


def make_site(root: pathlib.Path, *, symlinked: bool) -> pathlib.Path:
    for folder in ("dialects", "prompts", "config"):
        shutil.copytree(ROOT / folder, root / folder)
    flows = root / ("real-flows" if symlinked else "flows")
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "hotline.yaml", flows / "hotline.yaml")
    if symlinked:
        (root / "flows").symlink_to("real-flows", target_is_directory=True)
    cache = ROOT / "var" / "prompt-cache"
    if cache.is_dir():
        shutil.copytree(cache, root / "var" / "prompt-cache")
    return root


@pytest.fixture(scope="module", params=["plain", "symlinked"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = make_site(tmp_path_factory.mktemp(f"site-{request.param}"), symlinked=request.param == "symlinked")
    running = start_engine(root, "--flows", "flows", cwd=root)
    try:
        yield Site(root, running)
    finally:
        stop_engine(running)


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    base = 44000 + (os.getpid() % 50) * 100  # off the engine tests' caller ports
    test_caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        yield test_caller
    finally:
        await test_caller.close()
