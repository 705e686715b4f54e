"""The dashboard in headless Chromium: it loads, shows live numbers, and they change when a call
arrives (pushed into the LiveState and the store during the test). Saves tests/output/dashboard.png."""

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
from ivr.web import AgentState, FlowLoadStatus, FlowStatus, LiveState, create_app  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[2] / "output" / "dashboard.png"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed (apt install chromium)"),
]


def seed_live(live: LiveState, now: datetime) -> None:
    names = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "徐强", "孙丽"]
    states = [AgentState.IN_CALL] * 5 + [AgentState.AVAILABLE] * 3 + [
        AgentState.WRAP_UP, AgentState.RINGING, AgentState.ON_BREAK, AgentState.LOGGED_OUT,
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
    app = create_app(store=store, live=live, clock=LoopClock(), sse_debounce_s=0.1, summary_cache_s=0.0)
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
    from playwright.async_api import async_playwright

    url, live, store = served
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            await page.wait_for_selector("#conn.conn-on", timeout=15_000)
            await page.wait_for_function(
                "document.getElementById('in-ivr').textContent === '3'", timeout=15_000
            )
            assert await page.text_content("#in-queue") == "4"
            assert await page.text_content("#agents-available") == "3"
            await page.wait_for_function(
                "document.getElementById('calls-today').textContent !== '–'", timeout=15_000
            )
            before = int((await page.text_content("#calls-today") or "0").replace(",", ""))
            assert before == 32
            assert "claims_fastlane" in (await page.text_content("#flows") or "")

            now = datetime.now().astimezone()
            live.call_started("new-call", "13912345678", "95500", now, dialect="hak")
            await page.wait_for_function(
                "document.getElementById('in-ivr').textContent === '4'", timeout=15_000
            )

            rec = CallRecord("new-call", "13912345678", "95500", now, dialect="hak", intent="claim_status")
            store.call_started(rec)
            store.journey_event(JourneyEvent("new-call", 0, now, "greeting", "node_entered"))
            rec.outcome, rec.ended_at = Outcome.SELF_SERVED, now
            store.call_finished(rec)
            live.call_ended("new-call")
            await page.wait_for_function(
                f"document.getElementById('calls-today').textContent === '{before + 1}'", timeout=15_000
            )
            await page.wait_for_function(
                "document.getElementById('in-ivr').textContent === '3'", timeout=15_000
            )
            assert errors == []
            OUTPUT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(OUTPUT), full_page=True)
        finally:
            await browser.close()
    assert OUTPUT.stat().st_size > 10_000
