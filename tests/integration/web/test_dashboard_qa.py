"""What an ops user of `make run` met in the dashboard (headless Chromium, the browser's own clock faked):
on an engine that runs no outbound campaigns (the default: no `campaigns_dir`), the dashboard asked
`GET /api/campaigns` every 10 s and got 404 each time, a red "Failed to load resource" in the console
every poll. It now asks once per sign-in and keeps the card hidden."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Request, async_playwright, expect

from ivr.clock import LoopClock
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import LiveState, create_app
from tests.integration.web.conftest import ACCESS, CHROMIUM_ARGS, SUPERVISOR_TOKEN, serve_app, sign_in

CHROMIUM = peers.CHROMIUM
WAIT_MS = 10_000
CAMPAIGN_REFRESH_MS = 10_000
"""dashboard.js's poll period for the campaign card."""

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


@pytest.fixture
async def no_campaigns(tmp_path: Path) -> AsyncIterator[str]:
    store = SqliteStore(tmp_path / "calls.db")
    app = create_app(store=store, live=LiveState(), access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1)
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        store.close()


async def test_without_campaigns_the_dashboard_asks_once_not_every_poll(no_campaigns: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM.require(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            asked: list[str] = []

            def count(request: Request) -> None:
                if request.url.endswith("/api/campaigns"):
                    asked.append(request.url)

            page.on("request", count)
            await page.clock.install()
            async with page.expect_response(lambda r: r.url.endswith("/api/campaigns"), timeout=WAIT_MS) as answer:
                await page.goto(no_campaigns)
                await sign_in(page, SUPERVISOR_TOKEN)
            assert (await answer.value).status == 404
            await expect(page.locator("#campaign-card")).to_be_hidden()
            await page.clock.run_for(5 * CAMPAIGN_REFRESH_MS)  # five poll periods on the page's clock
            await page.evaluate("() => fetch('/healthz')")  # a round trip: any poll fired has been sent
            assert len(asked) == 1, asked
            await expect(page.locator("#campaign-card")).to_be_hidden()
            assert errors == []
        finally:
            await browser.close()
