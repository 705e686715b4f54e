from __future__ import annotations

import json
import os
import pathlib
import sys
from collections.abc import Generator

import pytest
from hypothesis import settings
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

ROOT = pathlib.Path(__file__).resolve().parent.parent

# With IVR_REQUIRE_PEERS=1 (`make test`, `.ci/run`) a skip is a failure: every skip in this suite stands for a
# missing peer program (sipp, PostgreSQL, chromium...), and a run that quietly skipped 28 tests is not green.
REQUIRE_PEERS = os.environ.get("IVR_REQUIRE_PEERS") == "1"

# Shared 2-core machines stall a worker for seconds at a time: a per-example deadline there measures the
# neighbours, not the code. CI also wants the same examples every run and a blob to replay a failure.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if REQUIRE_PEERS else "dev"))

# Every engine the suite starts, whatever its working directory (`ivr init` sites, installs, clusters), converts the
# shipped Moonshine model into one folder, as the sites of one machine would share it: once per machine (~15 s CPU),
# not once per test site. Tests of the conversion itself pass their own folder.
os.environ.setdefault("IVR_MODEL_CACHE_DIR", str(ROOT / "var" / "models"))


FILE_SECONDS = ROOT / "tests" / "file_seconds.json"
"""Measured wall time of the slow test files (refresh: `python -m tests.file_seconds run.xml`)."""
ONE_WORKER_DIRS = ("tests/integration/cluster/",)
"""Folders whose files take turns by a lock (tests/integration/cluster/conftest.py `one_cluster_at_a_time`):
one worker runs them all, one after another, instead of several workers waiting on each other."""


def _work_unit(nodeid: str) -> str:
    """What `make test` hands a worker in one piece: the test's file, or its folder for ONE_WORKER_DIRS."""
    path = nodeid.split("::", 1)[0]
    return next((folder for folder in ONE_WORKER_DIRS if path.startswith(folder)), path)


class LongestFirstScheduling(LoadFileScheduling):
    """`--dist loadfile`, a work unit per `_work_unit`, handed out in collection order (which
    `pytest_collection_modifyitems` makes longest first). xdist's own reorder, by number of tests, put the
    few-test live-call files (one to three minutes each) after ~2,000 unit tests: the run ended with one
    worker still in a 3-minute cluster file and three idle (10:00 UTC run, 2026-12-06)."""

    def _split_scope(self, nodeid: str) -> str:
        return _work_unit(nodeid)


def pytest_configure(config: pytest.Config) -> None:
    """Convert the English default's model before any test runs (once, in the controller; ~15 s the first time in a
    fresh clone, nothing later): the engines the first tests start would otherwise wait for it at their start-up,
    and tests with a start-up deadline measure the conversion instead of what they test."""
    if hasattr(config, "workerinput"):
        return
    from ivr.speech.moonshine_engine import MoonshineModel

    MoonshineModel.locate("en", cache=pathlib.Path(os.environ["IVR_MODEL_CACHE_DIR"]))


@pytest.hookimpl(optionalhook=True)  # a run with `-p no:xdist` has no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LongestFirstScheduling | None:
    if config.getvalue("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False
    return LongestFirstScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest work units first (the measured ones by FILE_SECONDS, then the rest in path order, so the
    live-call folders under tests/integration come before the unit tests that fill the gaps at the end)."""
    measured: dict[str, float] = json.loads(FILE_SECONDS.read_text(encoding="utf-8"))
    seconds: dict[str, float] = {}
    for path, taken in measured.items():
        unit = _work_unit(path)
        seconds[unit] = seconds.get(unit, 0.0) + taken
    order = {unit: i for i, unit in enumerate(dict.fromkeys(_work_unit(item.nodeid) for item in items))}
    items.sort(key=lambda item: (-seconds.get(_work_unit(item.nodeid), 0.0), order[_work_unit(item.nodeid)]))


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not REQUIRE_PEERS or not report.skipped or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped, but IVR_REQUIRE_PEERS=1 requires every peer: {_skip_reason(report)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_skip(report)  # a module-level skip (importorskip) is caught here, before any test in it runs
    return report


@pytest.fixture
def project_root() -> pathlib.Path:
    return ROOT


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    """A test that ran `ivr.cli.main()` leaves structlog writing to a closed captured stream."""
    import structlog

    structlog.reset_defaults()
    _forget_cached_loggers()


def _forget_cached_loggers() -> None:
    """`ivr.logconfig` turns on cache_logger_on_first_use: a module's `log` first used under that configuration
    keeps it through reset_defaults(), and a later `capture_logs()` sees nothing from it. With the files run
    longest first, tests/unit/web/test_web_guard.py ran after outbound/test_dialing.py (which runs `ivr.cli.main`
    in-process beside a served API) on one worker and its access-log test captured nothing (run r3)."""
    from structlog._config import BoundLoggerLazyProxy

    for name, module in list(sys.modules.items()):
        proxy = getattr(module, "log", None) if name.startswith("ivr") else None
        if isinstance(proxy, BoundLoggerLazyProxy) and "bind" in vars(proxy):
            del proxy.bind  # the cached bound logger; the next call assembles one from the current configuration
