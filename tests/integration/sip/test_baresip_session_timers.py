"""Session timers (RFC 4028) with baresip, a phone that does not know the extension (baresip 1.0's libre has no
Session-Expires): when it calls us we are the only side that can refresh, so we do, and it must answer our
refreshes (UPDATE, which it allows, without SDP) so the call stays up; when we call it, its 2xx names no timer
and we run none. The user agent's interval is made short (4 s, Min-SE 2 s) so refreshes happen in seconds."""

from __future__ import annotations

import asyncio
import pathlib

import pytest
from sip_peers import HOST, baresip, call_baresip, needs_baresip

from ivr.sip.events import ByeReceived
from ivr.sip.sessiontimer import Negotiated, TimerPolicy
from ivr.testing.sipharness import Harness

pytestmark = [pytest.mark.integration, needs_baresip]

SHORT = TimerPolicy(session_expires_s=4, min_se_s=2)


def _short_timers(harness: Harness) -> None:
    harness.ua.core.session_timer = SHORT
    harness.ua.endpoint.admission.session_timer = SHORT


async def test_baresip_answers_our_refreshes_and_its_call_stays_up(harness: Harness, tmp_path: pathlib.Path) -> None:
    _short_timers(harness)
    dial = f"/dial sip:100@{HOST}:{harness.port}"
    async with baresip(tmp_path, commands=[dial], talk_s=7.0) as (_, proc):  # it hangs up after 7 s of talk
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            await proc.stdout.readuntil(b"Call established")
            record = await harness.app.answered.get()
            assert record.leg is not None
            assert record.leg.session.negotiated == Negotiated(4, we_refresh=True, peer_supports=False)
            finished = await harness.app.finished.get()
    assert finished.end_reason == "remote_bye" and isinstance(finished.events[-1], ByeReceived), (
        "baresip hung up itself: our refreshes did not end the call")
    assert record.leg.session.refreshes_sent >= 2, "we refresh at half of 4 s until baresip hangs up after 7 s"
    assert record.leg.session.negotiated is None  # the dialog ended: the timer is disarmed


async def test_we_call_baresip_and_run_no_timer_when_its_2xx_names_none(harness: Harness,
                                                                         tmp_path: pathlib.Path) -> None:
    _short_timers(harness)
    async with baresip(tmp_path, auto_answer=True, talk_s=10.0) as (port, _):
        call, leg = await call_baresip(harness, port)
        assert call.invite.headers.get("Session-Expires") == "4" and call.invite.headers.get("Min-SE") == "2"
        assert leg.session.negotiated is None
        await leg.bye()
        assert leg.end_reason == "local_bye"
