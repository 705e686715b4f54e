"""The dashboard's call-recordings card in headless Chromium: a supervisor sees the newest recordings,
plays one (fetched with the token, decoded by the browser: its length is the file's), opens another by
call id, and is told when a call has none; a viewer never sees the card. Saves
tests/output/dashboard-recordings.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Page, expect

from ivr.clock import LoopClock
from ivr.journey import CallRecord, JourneyEvent
from ivr.media.tones import tone
from ivr.recording.stereo import wav_header
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import LiveState, create_app
from ivr.web.recordings import add_recording_routes
from tests.integration.web.conftest import (
    ACCESS,
    SUPERVISOR_TOKEN,
    VIEWER_TOKEN,
    chromium,
    open_live_dashboard,
    serve_app,
)
from tests.unit.web.web_rig import FakeControl

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = peers.CHROMIUM
OUTPUT = ROOT / "tests" / "output" / "dashboard-recordings.png"
WAIT_MS = 10_000
DAY = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason)]


def _write_recording(directory: Path, call_id: str, seconds: float) -> Path:
    left = tone((1000.0,), seconds, level_dbfs=-12.0)
    right = tone((600.0,), seconds, level_dbfs=-12.0)
    data = np.stack([left, right], axis=1).astype("<i2").tobytes()
    path = directory / DAY.strftime("%Y-%m-%d") / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_header(len(data)) + data)
    return path


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[str]:
    store = SqliteStore(tmp_path / "calls.db")
    directory = tmp_path / "recordings"
    for call_id, seconds in (("call-a@10.0.0.1", 3.0), ("call-b@10.0.0.1", 1.5)):
        path = _write_recording(directory, call_id, seconds)
        record = CallRecord(call_id=call_id, caller="13800000001", dialed="95519", started_at=DAY)
        store.call_started(record)
        store.journey_event(JourneyEvent(call_id, 1_000_000, DAY, "", "recording_stopped",
                                         {"path": str(path), "duration_s": seconds, "pauses": []}))
        store.call_finished(record)
    store.call_started(CallRecord(call_id="unrecorded", caller="1", dialed="2", started_at=DAY))
    assert store.flush(5)
    app = create_app(store=store, live=LiveState(), access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1)
    add_recording_routes(app, FakeControl(directory))
    try:
        async with serve_app(app) as url:
            yield url
    finally:
        store.close()


async def _player_duration(page: Page) -> float:
    return float(await page.eval_on_selector(
        "#recording-player",
        """audio => new Promise(done => {
             if (audio.readyState >= 1 && isFinite(audio.duration)) return done(audio.duration);
             audio.addEventListener('loadedmetadata', () => done(audio.duration), {once: true});
           })""",
    ))


async def test_a_supervisor_lists_and_plays_recordings(tmp_path: Path) -> None:
    async with serving(tmp_path) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1200})
        errors: list[str] = []
        await open_live_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        card = page.locator("#recording-card")
        await expect(card).to_be_visible(timeout=WAIT_MS)
        row = page.locator('#recordings tr[data-call="call-a@10.0.0.1"]')
        await expect(row.locator(".duration")).to_have_text("3.0 s", timeout=WAIT_MS)
        await expect(page.locator("#recording-count")).to_have_text("2")

        await row.locator("button").click()
        player = page.locator("#recording-player")
        await expect(player).to_have_attribute("data-call", "call-a@10.0.0.1", timeout=WAIT_MS)
        await expect(page.locator("#recording-playing")).to_have_text("call-a@10.0.0.1")
        assert abs(await _player_duration(page) - 3.0) < 0.05
        assert (await player.get_attribute("src") or "").startswith("blob:")
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT), full_page=True)

        await page.fill("#recording-call", "call-b@10.0.0.1")
        await page.click("#recording-open")
        await expect(player).to_have_attribute("data-call", "call-b@10.0.0.1", timeout=WAIT_MS)
        assert abs(await _player_duration(page) - 1.5) < 0.05

        await page.fill("#recording-call", "unrecorded")
        await page.click("#recording-open")
        await expect(page.locator("#recording-note")).to_contain_text("has no finished recording",
                                                                      timeout=WAIT_MS)
        assert errors == []
    assert OUTPUT.stat().st_size > 10_000


async def test_a_viewer_never_sees_recordings(tmp_path: Path) -> None:
    async with serving(tmp_path) as url, chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        async with page.expect_response(lambda r: "/api/recordings" in r.url, timeout=WAIT_MS) as answer:
            await open_live_dashboard(page, url, VIEWER_TOKEN, errors)
        assert (await answer.value).status == 403
        await expect(page.locator("#recording-card")).to_be_hidden()
        assert errors == []
