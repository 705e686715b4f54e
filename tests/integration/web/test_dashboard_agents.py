"""The dashboard's agents card in headless Chromium, over a real ACD and AgentDesk: it lists each agent's
state, pause reason and today's figures; a supervisor pauses (with a reason) and resumes an agent with its
buttons (the ACD sees it), logs an agent out and back in at their registered phone (an agent without one
gets the API's refusal shown); an agent's own token controls only that agent; a viewer's buttons are
disabled. Saves tests/output/dashboard-agents.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import expect

from ivr.acd import Acd, MemoryBackend
from ivr.acd.config import parse_config
from ivr.clock import LoopClock
from ivr.engine.agents import AgentDesk
from ivr.store import SqliteStore
from ivr.testing import peers
from ivr.web import ApiAccess, LiveState, Role, create_app
from ivr.web.agents import add_agent_routes
from tests.integration.web.conftest import SUPERVISOR_TOKEN, VIEWER_TOKEN, chromium, open_dashboard, serve_app

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = peers.CHROMIUM
OUTPUT = ROOT / "tests" / "output" / "dashboard-agents.png"
WAIT_MS = 10_000
AGENT_TOKEN = "ivr_browser-test-agent-a2"
ACCESS = ApiAccess.for_tokens((VIEWER_TOKEN, "wall-screen", Role.VIEWER),
                              (SUPERVISOR_TOKEN, "duty-lead", Role.SUPERVISOR), (AGENT_TOKEN, "a2", Role.VIEWER))
CONFIG = parse_config(
    """
sites:
  - {id: north, region: north, central: true}
agents:
  - {id: a1, name: 王芳, sip: {username: a1, password: pw}, site: north, skills: {general: 1}}
  - {id: a2, sip: {username: a2, password: pw}, site: north, skills: {general: 1}}
""",
    "queues:\n  - {id: general, strategy: longest-idle}\n",
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason)]


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[str, Acd, AgentDesk]]:
    clock = LoopClock()
    live = LiveState()
    store = SqliteStore(tmp_path / "calls.db")
    async with Acd(CONFIG, MemoryBackend(), clock) as acd:
        desk = AgentDesk(acd, live, clock)
        acd.add_listener(desk.publish)
        desk.publish()
        await acd.controls.login("a1", "sip:a1@10.0.0.1")
        await acd.controls.login("a2", "sip:a2@10.0.0.2")
        app = create_app(store=store, live=live, access=ACCESS, clock=clock, sse_debounce_s=0.1)
        add_agent_routes(app, desk, live)
        try:
            async with serve_app(app) as url:
                yield url, acd, desk
        finally:
            store.close()


async def test_a_supervisor_pauses_and_resumes_an_agent_and_sees_today(tmp_path: Path) -> None:
    async with serving(tmp_path) as (url, acd, _desk), chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 1400})
        errors: list[str] = []
        await open_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        await expect(page.locator("#agent-card")).to_be_visible(timeout=WAIT_MS)
        a1 = page.locator('#agents tr[data-agent="a1"]')
        await expect(a1.locator(".state")).to_have_text("空闲 Available", timeout=WAIT_MS)
        await expect(a1.locator(".agent")).to_have_text("a1 王芳")
        await expect(a1.locator("button.agent-resume")).to_be_disabled()

        await page.fill("#agent-reason", "lunch")
        await a1.locator("button.agent-pause").click()
        await expect(a1.locator(".state")).to_have_text("小休 On break", timeout=WAIT_MS)
        await expect(a1.locator(".reason")).to_have_text("lunch")
        await expect(a1.locator(".pauses")).to_contain_text("1 ·")
        assert acd.agent("a1").pause_reason == "lunch"
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT), full_page=True)

        await a1.locator("button.agent-resume").click()
        await expect(a1.locator(".state")).to_have_text("空闲 Available", timeout=WAIT_MS)
        assert acd.agent("a1").status.value == "available"
        assert errors == []
    assert OUTPUT.stat().st_size > 10_000


async def test_an_agents_own_token_controls_only_that_agent_and_a_viewer_none(tmp_path: Path) -> None:
    async with serving(tmp_path) as (url, acd, _desk), chromium() as browser:
        errors: list[str] = []
        page = await browser.new_page()
        await open_dashboard(page, url, AGENT_TOKEN, errors)
        own, other = page.locator('#agents tr[data-agent="a2"]'), page.locator('#agents tr[data-agent="a1"]')
        await expect(own.locator("button.agent-pause")).to_be_enabled(timeout=WAIT_MS)
        await expect(other.locator("button.agent-pause")).to_be_disabled()
        await own.locator("button.agent-pause").click()
        await expect(own.locator(".state")).to_have_text("小休 On break", timeout=WAIT_MS)
        assert acd.agent("a2").status.value == "paused"

        viewer = await browser.new_page()
        await open_dashboard(viewer, url, VIEWER_TOKEN, errors)
        row = viewer.locator('#agents tr[data-agent="a2"]')
        await expect(row.locator(".state")).to_have_text("小休 On break", timeout=WAIT_MS)
        await expect(row.locator("button.agent-resume")).to_be_disabled()
        assert errors == []


async def test_a_supervisor_logs_an_agent_out_and_back_in_at_the_registered_phone(tmp_path: Path) -> None:
    async with serving(tmp_path) as (url, acd, desk), chromium() as browser:
        desk.registration_changed("a1", "sip:a1@10.0.0.1")  # a1's phone registered here; a2's did not
        page = await browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        await open_dashboard(page, url, SUPERVISOR_TOKEN, errors)
        a1, a2 = page.locator('#agents tr[data-agent="a1"]'), page.locator('#agents tr[data-agent="a2"]')
        await expect(a1.locator("button.agent-logout")).to_be_enabled(timeout=WAIT_MS)
        assert await a1.locator("button.agent-login").count() == 0  # one of log out / log in is shown

        await a1.locator("button.agent-logout").click()
        await expect(a1.locator(".state")).to_have_text("离线 Logged out", timeout=WAIT_MS)
        assert acd.agent("a1").status.value == "logged_out"
        assert await a1.locator("button.agent-logout").count() == 0
        await a1.locator("button.agent-login").click()
        await expect(a1.locator(".state")).to_have_text("空闲 Available", timeout=WAIT_MS)
        assert acd.agent("a1").status.value == "available"

        await a2.locator("button.agent-logout").click()
        await expect(a2.locator(".state")).to_have_text("离线 Logged out", timeout=WAIT_MS)
        await a2.locator("button.agent-login").click()
        await expect(page.locator("#agent-error")).to_contain_text("a2: agent 'a2' has no registered phone",
                                                                   timeout=WAIT_MS)
        assert acd.agent("a2").status.value == "logged_out"
        assert errors == []
