"""What an ops user of `make run` met in the dashboard (headless Chromium):

- on an engine that runs no outbound campaigns (the default: no `campaigns_dir`), the dashboard asked
  `GET /api/campaigns` every 10 s and got 404 each time, a red "Failed to load resource" in the console
  every poll. It now asks once per sign-in and keeps the card hidden (the browser's clock faked);
- the dashboard and the API docs page had no icon, so the browser's `/favicon.ico` was a 404 in the
  console of every page load. Both pages now load with an empty console;
- with a viewer's token (a wall screen) the call-recordings and voice-messages cards, which are a
  supervisor's, stay hidden, but asked their routes again every 15-20 s: a 403 in the console each
  time, all day. They now ask once per token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.async_api import Request, expect

from ivr.clock import FakeClock, LoopClock
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import LiveState, create_app
from ivr.web.messages import add_message_routes
from ivr.web.outbound import add_outbound_routes
from ivr.web.recordings import add_recording_routes
from tests.integration.web.conftest import (
    ACCESS,
    SUPERVISOR_TOKEN,
    VIEWER_TOKEN,
    chromium,
    serve_app,
    sign_in,
    watch_errors,
)
from tests.unit.web.web_rig import CampaignControl, FakeDispatcher

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
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        watch_errors(page, errors)
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


@pytest.fixture
async def with_campaigns(tmp_path: Path) -> AsyncIterator[str]:
    """An app as the engine builds it, with a dispatcher and the outbound routes (no campaign in them):
    every card's route answers."""
    store = SqliteStore(tmp_path / "calls.db")
    scheduler = Scheduler(CampaignStore(tmp_path / "outbound.db"))
    app = create_app(
        store=store,
        live=LiveState(),
        access=ACCESS,
        clock=LoopClock(),
        dispatcher=FakeDispatcher(FakeClock()),
        sse_debounce_s=0.1,
    )
    add_outbound_routes(app, CampaignControl(scheduler))
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        scheduler.store.close()
        store.close()


async def test_dashboard_and_api_docs_load_with_an_empty_console(with_campaigns: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        async with page.expect_response(lambda r: r.url.endswith("/api/campaigns"), timeout=WAIT_MS) as answer:
            await page.goto(with_campaigns)
            await sign_in(page, SUPERVISOR_TOKEN)
        assert (await answer.value).status == 200
        await page.wait_for_selector("#conn.conn-on", timeout=WAIT_MS)
        await expect(page.locator("#campaign-card")).to_be_visible()
        await page.goto(with_campaigns + "/api/docs")
        await expect(page.locator("body")).to_contain_text("/api/campaigns", timeout=WAIT_MS)
        assert problems == []


@pytest.fixture
async def supervisor_cards(tmp_path: Path) -> AsyncIterator[str]:
    """An app with the recordings and messages routes. A viewer is refused by the guard before any
    handler runs, so their controls are placeholders."""
    store = SqliteStore(tmp_path / "calls.db")
    app = create_app(store=store, live=LiveState(), access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1)
    nothing = cast(Any, object())
    add_recording_routes(app, nothing)
    add_message_routes(app, nothing)
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        store.close()


async def test_a_viewer_is_asked_nothing_again_by_the_supervisors_cards(supervisor_cards: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        watch_errors(page, errors)
        asked: dict[str, int] = {"/api/recordings": 0, "/api/messages": 0}

        def count(request: Request) -> None:
            path = request.url.split("?")[0].removeprefix(supervisor_cards)
            if path in asked:
                asked[path] += 1

        page.on("request", count)
        await page.clock.install()
        async with (
            page.expect_response(lambda r: "/api/recordings" in r.url, timeout=WAIT_MS) as recordings,
            page.expect_response(lambda r: "/api/messages?" in r.url, timeout=WAIT_MS) as messages,
        ):
            await page.goto(supervisor_cards)
            await sign_in(page, VIEWER_TOKEN)
        assert (await recordings.value).status == (await messages.value).status == 403
        await page.clock.run_for(120_000)  # six reload periods of either card on the page's clock
        await page.evaluate("() => fetch('/healthz')")  # a round trip: any reload fired has been sent
        assert asked == {"/api/recordings": 1, "/api/messages": 1}
        await expect(page.locator("#recording-card")).to_be_hidden()
        await expect(page.locator("#message-card")).to_be_hidden()
        assert errors == []
