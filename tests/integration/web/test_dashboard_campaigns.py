"""The dashboard's outbound-campaign card in headless Chromium, over a real campaign scheduler (SQLite state):
it lists each campaign's progress, pauses and resumes one with its button (the scheduler sees it), disables the
button for a viewer's token, and stays hidden on an engine that runs no campaigns.
Saves tests/output/dashboard-campaigns.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import expect

from ivr.clock import LoopClock
from ivr.outbound.loader import load_text
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.outbound.targets import make_target
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import LiveState, create_app
from ivr.web.outbound import add_outbound_routes
from tests.integration.web.conftest import (
    ACCESS,
    SUPERVISOR_TOKEN,
    VIEWER_TOKEN,
    chromium,
    open_live_dashboard,
    serve_app,
)
from tests.unit.web.web_rig import CampaignControl

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = peers.CHROMIUM
OUTPUT = ROOT / "tests" / "output" / "dashboard-campaigns.png"
WAIT_MS = 10_000
CAMPAIGNS = {
    "pay": 'id: pay\nflow: payment_failed\ntrunk: "sip:{number}@127.0.0.1:5070"\n',
    "revisit": 'id: revisit\nflow: revisit\ntrunk: "sip:{number}@127.0.0.1:5070"\n',
}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler(CampaignStore(tmp_path / "outbound.db"))
    for name, text in CAMPAIGNS.items():
        campaign = load_text(text, str(tmp_path / f"{name}.yaml")).campaign
        assert campaign is not None
        scheduler.add_campaign(campaign)
    targets = [make_target({"id": f"t{i}", "number": f"1380000{i:04d}"}, default_id=f"t{i}") for i in range(3)]
    assert scheduler.add_targets("pay", targets, dt.datetime.now(dt.UTC))
    yield scheduler
    scheduler.store.close()


@asynccontextmanager
async def serving(tmp_path: Path, scheduler: Scheduler | None) -> AsyncIterator[str]:
    store = SqliteStore(tmp_path / "calls.db")
    app = create_app(store=store, live=LiveState(), access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1)
    if scheduler is not None:
        add_outbound_routes(app, CampaignControl(scheduler, lambda: dt.datetime.now(dt.UTC)))
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        store.close()


async def test_campaign_card_shows_progress_and_pauses_and_resumes(tmp_path: Path, scheduler: Scheduler) -> None:
    async with serving(tmp_path, scheduler) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1200})
        errors: list[str] = []
        await open_live_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        card = page.locator("#campaign-card")
        await expect(card).to_be_visible(timeout=WAIT_MS)
        pay = page.locator('#campaigns tr[data-campaign="pay"]')
        await expect(pay.locator(".done")).to_have_text("0 / 3", timeout=WAIT_MS)
        await expect(pay.locator(".state")).to_have_text("进行中 Running")
        await expect(page.locator('#campaigns tr[data-campaign="revisit"] .done')).to_have_text("0 / 0")
        await expect(page.locator("#campaign-count")).to_have_text("进行中 2 / 2 running")

        await pay.locator("button.toggle").click()
        await expect(pay.locator(".state")).to_have_text("已暂停 Paused", timeout=WAIT_MS)
        assert scheduler.progress("pay").paused
        assert not scheduler.progress("revisit").paused
        await expect(page.locator("#campaign-count")).to_have_text("进行中 1 / 2 running")
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT), full_page=True)

        await pay.locator("button.toggle").click()
        await expect(pay.locator(".state")).to_have_text("进行中 Running", timeout=WAIT_MS)
        assert not scheduler.progress("pay").paused
        assert errors == []
    assert OUTPUT.stat().st_size > 10_000


async def test_a_viewer_sees_campaigns_but_cannot_pause_them(tmp_path: Path, scheduler: Scheduler) -> None:
    async with serving(tmp_path, scheduler) as url, chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        await open_live_dashboard(page, url, VIEWER_TOKEN, errors)
        pay = page.locator('#campaigns tr[data-campaign="pay"]')
        await expect(pay.locator(".done")).to_have_text("0 / 3", timeout=WAIT_MS)
        await expect(pay.locator("button.toggle")).to_be_disabled()
        assert errors == []


async def test_no_campaigns_no_card(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as url, chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        async with page.expect_response(lambda r: r.url.endswith("/api/campaigns"), timeout=WAIT_MS) as answer:
            await open_live_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        assert (await answer.value).status == 404
        await expect(page.locator("#campaign-card")).to_be_hidden()
        assert errors == []
