from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def project_root() -> pathlib.Path:
    return ROOT


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    """A test that ran `ivr.cli.main()` leaves structlog writing to a closed captured stream."""
    import structlog

    structlog.reset_defaults()
