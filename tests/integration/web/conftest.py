from __future__ import annotations

import pytest
import structlog


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a structlog configuration another test left behind (see tests/unit/store/conftest.py)."""
    structlog.reset_defaults()
