"""The dashboard's emergency-dispatch card in headless Chromium, over the real dispatcher: an in-memory
ACD built from config/agents.yaml and config/queues.yaml, its night rule moved to cover the present
so the "night" dispatch is always listed. The card starts a dispatch through its form, shows the
API's refusals, ends a dispatch with its button, lists the recorded changes, and shows a reason
holding markup as text. Saves tests/output/dashboard-dispatch.png."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Dialog, Page, expect

from ivr.acd import Acd, AcdConfig, MemoryBackend, load_config
from ivr.clock import LoopClock
from ivr.engine.dispatch import AcdDispatcher
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import LiveState, create_app
from tests.integration.web.conftest import ACCESS, SUPERVISOR_TOKEN, chromium, serve_app, sign_in

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = peers.CHROMIUM
OUTPUT = ROOT / "tests" / "output" / "dashboard-dispatch.png"
WAIT_MS = 10_000
TZ = "Asia/Shanghai"
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


def night_around_now() -> AcdConfig:
    """The demo config with its night rule (22:00-08:00 Beijing) moved to an hour either side of now."""
    config = load_config(ROOT / "config" / "agents.yaml", ROOT / "config" / "queues.yaml")
    assert config.night is not None
    now = datetime.now(UTC)
    minute = now.hour * 60 + now.minute
    night = replace(config.night, start_min=(minute - 60) % 1440, end_min=(minute + 60) % 1440, utc_offset_h=0)
    return replace(config, night=night)


@asynccontextmanager
async def serving(store: SqliteStore, dispatcher: AcdDispatcher | None) -> AsyncIterator[str]:
    app = create_app(
        store=store, live=LiveState(), dispatcher=dispatcher, access=ACCESS, sse_debounce_s=0.1, summary_cache_s=0.0
    )
    async with serve_app(app) as url:
        yield url


@asynccontextmanager
async def dashboard(url: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """The dashboard open in headless Chromium, in Beijing time (so `until` needs a +08:00 offset);
    yields the page and the page errors and dialogs seen (an injected `onerror=alert` would add one)."""
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1100}, timezone_id=TZ)
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

        async def on_dialog(dialog: Dialog) -> None:
            problems.append(f"dialog: {dialog.message}")
            await dialog.dismiss()  # an open dialog would block the page

        page.on("dialog", on_dialog)
        await page.goto(url)
        await sign_in(page, SUPERVISOR_TOKEN)
        yield page, problems


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "calls.db")
    yield store
    store.close()


@pytest.fixture
async def dispatcher(store: SqliteStore) -> AsyncIterator[AcdDispatcher]:
    acd = Acd(night_around_now(), MemoryBackend(), LoopClock())
    dispatcher = AcdDispatcher(acd, store)  # before start, as the engine does: hears the night rule
    async with acd:
        yield dispatcher


async def test_dispatch_card_starts_refuses_and_ends_dispatches(store: SqliteStore, dispatcher: AcdDispatcher) -> None:
    async with serving(store, dispatcher) as url, dashboard(url) as (page, problems):
        active, log, error = (
            page.locator("#dispatch-active"),
            page.locator("#dispatch-log"),
            page.locator("#dispatch-error"),
        )

        # The night rule is listed as such, without an End button; its start is in the log.
        night = active.locator("tr[data-id=night]")
        await expect(night).to_contain_text("夜间规则 Night rule", timeout=WAIT_MS)
        await expect(night).to_contain_text("beijing, shanghai")
        await expect(night.locator("button")).to_have_count(0)
        await expect(log.locator("tbody tr").first).to_contain_text("夜间开始 Night began")

        # Start one through the form, until an hour from now on the browser's (Beijing) clock.
        until = datetime.now(ZoneInfo(TZ)).replace(second=0, microsecond=0) + timedelta(hours=1)
        await page.fill("#dispatch-region", "south")
        await page.fill("#dispatch-sites", "beijing, shanghai")
        await page.fill("#dispatch-queues", "south-service")
        await page.fill("#dispatch-until", until.strftime("%Y-%m-%dT%H:%M"))
        await page.fill("#dispatch-reason", "台风 typhoon " + XSS)
        await page.click("#dispatch-submit")
        started = active.locator("tr[data-id=d1]")
        await expect(started).to_contain_text("south", timeout=WAIT_MS)
        await expect(started).to_contain_text("beijing, shanghai")
        await expect(started).to_contain_text("south-service")
        await expect(started).to_contain_text("duty-lead")  # requested_by: the token's name
        await expect(started.locator("button")).to_have_text("结束 End")
        await expect(page.locator("#dispatch-region")).to_have_value("")  # the form cleared
        await expect(error).to_be_hidden()
        (view,) = [d for d in dispatcher.active() if d.dispatch_id == "d1"]
        assert view.until == until  # the same instant: the datetime-local value was sent with +08:00
        assert (view.queues, view.helper_sites) == (("south-service",), ("beijing", "shanghai"))

        # The markup in the reason is shown as text: no element made from it, no script run.
        await expect(started.locator("td.reason")).to_have_text("台风 typhoon " + XSS)
        await expect(log.locator("tbody tr").first).to_contain_text(XSS)
        assert await page.evaluate("document.querySelectorAll('img').length") == 0

        # Refused by the ACD (409): the API's message, naming the unknown site, is shown.
        await page.fill("#dispatch-region", "south")
        await page.fill("#dispatch-sites", "atlantis")
        await page.click("#dispatch-submit")
        await expect(error).to_have_text("dispatch names unknown helper site 'atlantis'", timeout=WAIT_MS)
        await expect(page.locator("#dispatch-sites")).to_have_value("atlantis")  # kept, to correct it
        await expect(log.locator("tbody tr").first).to_contain_text("被拒 Refused")
        await expect(log.locator("tbody tr").first).to_contain_text("atlantis")

        # Refused by the API (400): an `until` already past.
        await page.fill("#dispatch-sites", "beijing")
        await page.fill("#dispatch-until", (until - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
        await page.click("#dispatch-submit")
        await expect(error).to_contain_text("field 'until'", timeout=WAIT_MS)
        await expect(error).to_contain_text("+08:00) is not in the future")
        await expect(active.locator("tbody tr")).to_have_count(2)  # night and d1, nothing new

        # End d1 with its button: gone from the list, its end first in the log.
        await started.locator("button").click()
        await expect(started).to_have_count(0, timeout=WAIT_MS)
        await expect(night).to_have_count(1)
        first = log.locator("tbody tr").first
        await expect(first).to_contain_text("结束 End")
        await expect(first).to_contain_text("已执行 Accepted")
        await expect(first).to_contain_text("d1")
        await expect(error).to_be_hidden()  # the earlier refusal was cleared by the new action
        assert [d.dispatch_id for d in dispatcher.active()] == ["night"]
        logged = [(e.action.value, e.accepted) for e in store.dispatches(10)]
        assert logged == [("end", True), ("start", False), ("start", False), ("start", True), ("night_start", True)]

        assert problems == []
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.locator("#dispatch-card").screenshot(path=str(OUTPUT))


async def test_without_a_dispatcher_the_card_says_so_and_the_form_is_off(store: SqliteStore) -> None:
    async with serving(store, None) as url, dashboard(url) as (page, problems):
        await expect(page.locator("#dispatch-note")).to_contain_text(
            "no ACD configured", timeout=WAIT_MS
        )  # the API's 503 message
        await expect(page.locator("#dispatch-submit")).to_be_disabled()
        await expect(page.locator("#dispatch-region")).to_be_disabled()
        assert problems == []
