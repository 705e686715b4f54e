"""Interop with baresip: it calls us, and we call it (auto-answer), with no sound card."""

from __future__ import annotations

import asyncio
import pathlib

import pytest
from sip_peers import HOST, baresip, call_baresip, needs_baresip

from ivr.sip.events import ByeReceived
from ivr.testing.sipharness import Harness

pytestmark = [pytest.mark.integration, needs_baresip]


async def test_baresip_calls_in_is_answered_and_hangs_up(harness: Harness, tmp_path: pathlib.Path) -> None:
    dial = f"/dial sip:100@{HOST}:{harness.port}"
    async with baresip(tmp_path, commands=[dial], talk_s=1.0) as (_, proc):
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            await proc.stdout.readuntil(b"Call established")  # baresip's own view: our 200 worked
            record = await harness.app.finished.get()
    assert record.answered and record.caller == "baresip" and record.dialed == "100"
    assert record.end_reason == "remote_bye" and isinstance(record.events[-1], ByeReceived)


async def test_we_call_baresip_and_hang_up(harness: Harness, tmp_path: pathlib.Path) -> None:
    async with baresip(tmp_path, auto_answer=True, talk_s=5.0) as (port, proc):
        _, leg = await call_baresip(harness, port)
        assert b"m=audio" in leg.remote_sdp and b"PCMU" in leg.remote_sdp
        await leg.bye()
        assert leg.end_reason == "local_bye"
        assert proc.returncode is None  # baresip is still up: it took our BYE, not crashed
