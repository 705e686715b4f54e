from __future__ import annotations

import os
import pathlib
from collections.abc import Generator

import pytest
from hypothesis import settings

ROOT = pathlib.Path(__file__).resolve().parent.parent

# With IVR_REQUIRE_PEERS=1 (`make test`, `.ci/run`) a skip is a failure: every skip in this suite stands for a
# missing peer program (sipp, PostgreSQL, chromium...), and a run that quietly skipped 28 tests is not green.
REQUIRE_PEERS = os.environ.get("IVR_REQUIRE_PEERS") == "1"

# Shared 2-core machines stall a worker for seconds at a time: a per-example deadline there measures the
# neighbours, not the code. CI also wants the same examples every run and a blob to replay a failure.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if REQUIRE_PEERS else "dev"))


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
