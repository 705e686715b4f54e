"""The dashboard's voice-message card in headless Chromium, over a real message store (SQLite + WAV files):
a supervisor sees the messages newest first with transcript and follow-up, and plays one (the audio is
fetched with the token and decoded by the browser: its duration is the message's); a viewer never sees the
card. Saves tests/output/dashboard-messages.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import expect

from ivr.clock import LoopClock
from ivr.store import SqliteStore
from ivr.store.messages import MessageStore, NewMessage
from ivr.testing import peers
from ivr.web import LiveState, create_app
from ivr.web.messages import add_message_routes
from tests.integration.web.conftest import ACCESS, SUPERVISOR_TOKEN, VIEWER_TOKEN, chromium, open_dashboard, serve_app

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = peers.CHROMIUM
OUTPUT = ROOT / "tests" / "output" / "dashboard-messages.png"
WAIT_MS = 10_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[str]:
    store = SqliteStore(tmp_path / "calls.db")
    messages = MessageStore(store, tmp_path / "messages")
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)  # within the card's 7-day voice of the customer
    comment = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 6000).astype(np.int16)
    messages.add(NewMessage("call-s", "13800138009", "general", "cmn", t0 - dt.timedelta(hours=1), comment,
                            "terminator", "等了太久没人接", 0.6, kind="survey", survey_score=2))
    left = [("my premium payment failed", 1.5), ("我想报案，车被撞了，请回电", 2.5),
            ("please call me back about my premium", 4.0)]
    for i, (text, seconds) in enumerate(left):
        audio = (np.sin(2 * np.pi * 440 * np.arange(round(seconds * 8000)) / 8000) * 6000).astype(np.int16)
        stored = messages.add(NewMessage(f"call-{i}", f"1380013800{i}", "general", "cmn", t0 + dt.timedelta(hours=i),
                                         audio, "terminator", text, 0.8))
        messages.set_follow_up(stored.message_id, "queue:general")
    app = create_app(store=store, live=LiveState(), access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1)
    add_message_routes(app, messages)
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        store.close()


async def test_a_supervisor_reads_and_plays_the_messages(tmp_path: Path) -> None:
    async with serving(tmp_path) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1400})
        errors: list[str] = []
        await open_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        card = page.locator("#message-card")
        await expect(card).to_be_visible(timeout=WAIT_MS)
        rows = page.locator("#messages tbody tr[data-message]")
        await expect(rows).to_have_count(4)
        await expect(rows.nth(3).locator(".transcript")).to_have_text("[NPS 2] 等了太久没人接")
        await expect(rows.nth(0).locator(".transcript")).to_have_text("please call me back about my premium")
        await expect(rows.nth(1).locator(".transcript")).to_have_text("我想报案，车被撞了，请回电")
        await expect(rows.nth(0).locator(".duration")).to_have_text("4.0 s")
        await expect(rows.nth(0).locator(".follow-up")).to_have_text("queue:general")
        await expect(page.locator("#message-count")).to_have_text("4")
        themes = page.locator("#voc-themes tbody tr[data-theme]")
        await expect(themes).to_have_count(1)
        await expect(themes.nth(0).locator(".term")).to_have_text("premium")
        await expect(themes.nth(0).locator(".count")).to_have_text("2")
        await expect(page.locator("#voc-needs")).to_contain_text("unclassified 4")  # no flows: no classifier

        await rows.nth(1).locator("button.play").click()
        audio = rows.nth(1).locator("audio")
        await expect(audio).to_have_count(1, timeout=WAIT_MS)
        duration = await audio.evaluate(
            "a => new Promise(ok => a.readyState >= 1 ? ok(a.duration) :"
            " a.addEventListener('loadedmetadata', () => ok(a.duration)))"
        )
        assert duration == pytest.approx(2.5, abs=0.05)
        assert (await audio.get_attribute("src") or "").startswith("blob:")
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT), full_page=True)
        assert errors == []
    assert OUTPUT.stat().st_size > 10_000


async def test_a_viewer_never_sees_the_messages(tmp_path: Path) -> None:
    async with serving(tmp_path) as url, chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        async with page.expect_response(lambda r: "/api/messages" in r.url, timeout=WAIT_MS) as answer:
            await open_dashboard(page, url, VIEWER_TOKEN, errors)
        assert (await answer.value).status == 403
        await expect(page.locator("#message-card")).to_be_hidden()
        assert await page.locator("#messages tbody tr[data-message]").count() == 0
        assert errors == []
