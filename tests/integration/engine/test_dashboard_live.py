"""The real engine's dashboard in headless Chromium, live: two real SIP calls arrive, one stays in
the IVR and one waits in the general queue (no agent is logged in), and the numbers on screen
follow them up and back down. Saves tests/output/dashboard-live.png while both calls are up."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from ivr.testing import peers
from ivr.testing.caller import Keys, Pause, TestCaller
from tests.integration.engine.conftest import RunningEngine, needs_tts

CHROMIUM = peers.CHROMIUM
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
OUTPUT = pathlib.Path(__file__).resolve().parents[2] / "output" / "dashboard-live.png"
CALL_S = 45.0
"""How long each call may stay up: long enough for the second to reach the queue (greeting, open
question, night notice when it is night in Beijing, "please hold"). Both hang up once the screen has
shown them, and the numbers must come back down."""

pytestmark = [
    pytest.mark.integration,
    needs_tts,
    pytest.mark.skipif(CHROMIUM.missing, reason=CHROMIUM.reason),
]


def text_is(element_id: str, value: int) -> str:
    return f"document.getElementById('{element_id}').textContent.replace(/,/g, '') === '{value}'"


async def number(page: object, element_id: str) -> int:
    text = await page.text_content(f"#{element_id}")  # type: ignore[attr-defined]
    return int((text or "").replace(",", ""))


async def test_dashboard_follows_real_calls(engine: RunningEngine, caller: TestCaller) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM.require(), args=ARGS)
        try:
            # bypass_csp: the checks below poll with JS expressions, which the dashboard's CSP forbids
            # (tests/integration/web/test_dashboard.py checks the page under the CSP).
            page = await browser.new_page(
                viewport={"width": 1440, "height": 1000}, device_scale_factor=1, bypass_csp=True
            )
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(engine.api + "/")
            await page.fill("#login-token", engine.token)  # the dashboard asks for an API token once
            await page.click("#login-submit")
            await page.wait_for_selector("#conn.conn-on", timeout=15_000)
            await page.wait_for_function(
                "document.getElementById('calls-today').textContent !== '–'"
                " && document.getElementById('in-ivr').textContent !== '–'", timeout=15_000,
            )  # fmt: skip
            in_ivr, in_queue, calls_today = (
                await number(page, "in-ivr"), await number(page, "in-queue"), await number(page, "calls-today"),
            )  # fmt: skip

            on_the_line = [Pause(0.5)] * int(CALL_S / 0.5)  # short steps: the caller sees its own hang-up
            calls = [
                asyncio.create_task(caller.call(engine.uri, on_the_line, from_number="13600000401", linger_s=0.0)),
                asyncio.create_task(
                    caller.call(
                        engine.uri,
                        [Pause(1.0), Keys("0"), *on_the_line[2:]],
                        from_number="13600000402",
                        linger_s=0.0,
                    )
                ),
            ]
            try:
                await page.wait_for_function(text_is("in-ivr", in_ivr + 2), timeout=15_000)
                await page.wait_for_function(text_is("calls-today", calls_today + 2), timeout=15_000)
                # The second caller pressed 0: once queued they count in the queue, not the IVR.
                await page.wait_for_function(
                    f"{text_is('in-queue', in_queue + 1)} && {text_is('in-ivr', in_ivr + 1)}", timeout=40_000
                )
                assert "general" in (await page.text_content("#queues") or "")
                recent = await page.text_content("#recent") or ""
                assert "13600000401" in recent and "13600000402" in recent
                assert "cmn" in recent, f"the live calls' dialect is not shown: {recent!r}"
                OUTPUT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(OUTPUT), full_page=True)
            finally:
                for leg in list(caller.ua.legs):  # both callers hang up
                    await leg.bye()
                reports = await asyncio.gather(*calls)
            assert all(r.answered for r in reports)
            await page.wait_for_function(
                f"{text_is('in-ivr', in_ivr)} && {text_is('in-queue', in_queue)}", timeout=15_000
            )
            assert await number(page, "calls-today") == calls_today + 2
            assert errors == []
        finally:
            await browser.close()
    assert OUTPUT.stat().st_size > 10_000
