from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from ivr.testing import peers
from ivr.web import ApiAccess, Role

VIEWER_TOKEN = "ivr_browser-test-viewer"
SUPERVISOR_TOKEN = "ivr_browser-test-supervisor"
ACCESS = ApiAccess.for_tokens(
    (VIEWER_TOKEN, "wall-screen", Role.VIEWER), (SUPERVISOR_TOKEN, "duty-lead", Role.SUPERVISOR)
)
"""The tokens the served dashboards accept in these tests."""


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
"""How the dashboard tests launch Chromium: headless, quiet, nothing fetched from the network."""


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def sign_in(page: Any, token: str) -> None:
    """Answer the dashboard's token prompt, as an ops user does once per tab."""
    await page.wait_for_selector("#login:not([hidden])", timeout=15_000)
    await page.fill("#login-token", token)
    await page.click("#login-submit")
    await page.wait_for_selector("#login", state="hidden", timeout=15_000)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium launched with CHROMIUM_ARGS for one test, closed however the test ends."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=peers.CHROMIUM.require(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def watch_errors(page: Page, errors: list[str]) -> None:
    """Add to `errors` every script error of the page and every Content Security Policy violation (the API's
    CSP allows no inline script or style and no eval, so a violation is a bug of the page)."""
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)


async def open_dashboard(page: Page, url: str, token: str, errors: list[str]) -> None:
    """Load the dashboard at `url` and sign in with `token`, its errors watched into `errors`."""
    watch_errors(page, errors)
    await page.goto(url)
    await sign_in(page, token)


async def open_live_dashboard(page: Page, url: str, token: str, errors: list[str]) -> None:
    """`open_dashboard`, then wait until its live feed (SSE) is connected: the cards drawn from it are current."""
    await open_dashboard(page, url, token, errors)
    await page.wait_for_selector("#conn.conn-on", timeout=10_000)


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a structlog configuration another test left behind (see tests/unit/store/conftest.py)."""
    structlog.reset_defaults()
