from __future__ import annotations

from typing import Any

import pytest
import structlog

from ivr.web import ApiAccess, Role

VIEWER_TOKEN = "ivr_browser-test-viewer"
SUPERVISOR_TOKEN = "ivr_browser-test-supervisor"
ACCESS = ApiAccess.for_tokens(
    (VIEWER_TOKEN, "wall-screen", Role.VIEWER), (SUPERVISOR_TOKEN, "duty-lead", Role.SUPERVISOR)
)
"""The tokens the served dashboards accept in these tests."""


async def sign_in(page: Any, token: str) -> None:
    """Answer the dashboard's token prompt, as an ops user does once per tab."""
    await page.wait_for_selector("#login:not([hidden])", timeout=15_000)
    await page.fill("#login-token", token)
    await page.click("#login-submit")
    await page.wait_for_selector("#login", state="hidden", timeout=15_000)


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a structlog configuration another test left behind (see tests/unit/store/conftest.py)."""
    structlog.reset_defaults()
