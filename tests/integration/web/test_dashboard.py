"""The dashboard in headless Chromium: it asks for an API token (a wrong one is refused), then shows
live numbers, and they change when a call arrives (pushed into the LiveState and the store during the
test). The token stays in the tab's session storage: never in a URL or a cookie, and a reload keeps
the user signed in. Saves tests/output/dashboard.png."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "store"))
from store_contract import sample_calls, write_calls  # noqa: E402

from ivr.clock import LoopClock  # noqa: E402
from ivr.journey import CallRecord, JourneyEvent, Outcome  # noqa: E402
from ivr.store import SqliteStore  # noqa: E402
from ivr.testing import peers  # noqa: E402
from ivr.web import AgentPresence, FlowLoadStatus, FlowStatus, LiveState, create_app  # noqa: E402
from tests.integration.web.conftest import ACCESS, VIEWER_TOKEN, chromium, sign_in

CHROMIUM = peers.CHROMIUM
OUTPUT = Path(__file__).resolve().parents[2] / "output" / "dashboard.png"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


def seed_live(live: LiveState, now: datetime) -> None:
    names = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "徐强", "孙丽"]
    states = [AgentPresence.IN_CALL] * 5 + [AgentPresence.AVAILABLE] * 3 + [
        AgentPresence.WRAP_UP, AgentPresence.RINGING, AgentPresence.ON_BREAK, AgentPresence.LOGGED_OUT,
    ]  # fmt: skip
    for i, (name, state) in enumerate(zip(names, states, strict=True)):
        queues = ["claims", "general"] if i % 2 else ["claims", "elderly"]
        live.agent_changed(f"a{i:02d}", state, now - timedelta(minutes=i), name=name, queues=queues)
    for i in range(3):
        live.call_started(
            f"ivr-{i}", f"1380013{i:04d}", "95500", now - timedelta(seconds=20 * i), dialect="cmn"
        )
        live.call_progressed(f"ivr-{i}", node=["greeting", "ask_need", "verify_policy"][i])
    for i, (queue, wait) in enumerate([("claims", 48), ("claims", 21), ("general", 9), ("elderly", 5)]):
        call_id = f"q-{i}"
        live.call_started(
            call_id, f"1390013{i:04d}", "95500", now - timedelta(seconds=wait + 40), dialect="yue"
        )
        live.call_enqueued(call_id, queue, now - timedelta(seconds=wait), context={"intent": "claim_status"})
    live.flow_status(
        FlowStatus("hotline", "2026.01.05-3", FlowLoadStatus.LOADED, now, path="flows/hotline.yaml")
    )
    live.flow_status(FlowStatus("outbound_visit", "2026.01.02-1", FlowLoadStatus.LOADED, now))
    live.flow_status(
        FlowStatus(
            "claims_fastlane", "", FlowLoadStatus.FAILED, now,
            ("flows/claims_fastlane.yaml:42:7: node 'menu' goes to unknown node 'agnet' "
             "(did you mean 'agent'?)",),
        )
    )  # fmt: skip


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, LiveState, SqliteStore]]:
    store = SqliteStore(tmp_path / "calls.db")
    live = LiveState()
    now = datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    step = min(timedelta(seconds=60), (now - midnight) / 40)
    write_calls(store, sample_calls(base=now - step * 32, step=step))
    seed_live(live, now)
    app = create_app(
        store=store, live=live, access=ACCESS, clock=LoopClock(), sse_debounce_s=0.1, summary_cache_s=0.0
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", live, store
    finally:
        await runner.cleanup()
        store.close()


async def test_dashboard_shows_live_numbers_that_change_when_a_call_arrives(
    served: tuple[str, LiveState, SqliteStore],
) -> None:
    from playwright.async_api import expect

    url, live, store = served
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # The page runs under the API's CSP (no inline script or style, no eval): a violation is an error.
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        requests: list[tuple[str, str | None]] = []
        page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
        await page.goto(url)

        # Asked for a token before any figure is fetched; a wrong one is refused with a message.
        await page.wait_for_selector("#login:not([hidden])", timeout=15_000)
        assert await page.text_content("#in-ivr") == "–"
        await page.fill("#login-token", "ivr_not-a-token")
        await page.click("#login-submit")
        await page.wait_for_selector("#login-error:not([hidden])", timeout=15_000)
        assert "not a valid token" in (await page.text_content("#login-error") or "")
        await sign_in(page, VIEWER_TOKEN)
        assert await page.text_content("#who") == "wall-screen · viewer"
        await page.wait_for_selector("#conn.conn-on", timeout=15_000)
        await expect(page.locator("#in-ivr")).to_have_text("3", timeout=15_000)
        assert await page.text_content("#in-queue") == "4"
        assert await page.text_content("#agents-available") == "3"
        await expect(page.locator("#calls-today")).not_to_have_text("–", timeout=15_000)
        before = int((await page.text_content("#calls-today") or "0").replace(",", ""))
        assert before == 32
        assert "claims_fastlane" in (await page.text_content("#flows") or "")

        now = datetime.now().astimezone()
        live.call_started("new-call", "13912345678", "95500", now, dialect="hak")
        await expect(page.locator("#in-ivr")).to_have_text("4", timeout=15_000)

        rec = CallRecord("new-call", "13912345678", "95500", now, dialect="hak", intent="claim_status")
        store.call_started(rec)
        store.journey_event(JourneyEvent("new-call", 0, now, "greeting", "node_entered"))
        rec.outcome, rec.ended_at = Outcome.SELF_SERVED, now
        store.call_finished(rec)
        live.call_ended("new-call")
        await expect(page.locator("#calls-today")).to_have_text(str(before + 1), timeout=15_000)
        await expect(page.locator("#in-ivr")).to_have_text("3", timeout=15_000)
        assert errors == []
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT), full_page=True)

        # The token went in headers only: no URL carries it, no cookie holds it.
        api_requests = [(u, auth) for u, auth in requests if "/api/" in u and "/api/whoami" not in u]
        assert {u.split("?")[0].removeprefix(url) for u, _ in api_requests} >= {
            "/api/events", "/api/reports/summary", "/api/dispatch"
        }  # fmt: skip
        assert all(auth == f"Bearer {VIEWER_TOKEN}" for _, auth in api_requests)
        assert not any(VIEWER_TOKEN in u for u, _ in requests)
        assert await page.context.cookies() == []
        assert await page.evaluate("sessionStorage.getItem('ivr.apiToken')") == VIEWER_TOKEN

        # A reload in the same tab keeps the sign-in; signing out asks again.
        await page.reload()
        await page.wait_for_selector("#conn.conn-on", timeout=15_000)
        assert await page.is_hidden("#login")
        await page.click("#signout")
        await page.wait_for_selector("#login:not([hidden])", timeout=15_000)
        assert await page.evaluate("sessionStorage.getItem('ivr.apiToken')") is None
    assert OUTPUT.stat().st_size > 10_000
