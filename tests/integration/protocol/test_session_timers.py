"""Session timers (RFC 4028) against the running engine, with SIPp as the caller.

The engine supports the extension (`Supported: timer`): it answers a caller's refreshes (re-INVITE with an
unchanged SDP, UPDATE without a body) with 200s that carry the agreed Session-Expires and `Require: timer`;
takes a caller that requires timers; refuses an interval below its Min-SE with 422 naming it; refreshes
itself when it is the refresher; and hangs up a caller that stopped refreshing at the interval minus
min(32 s, interval/3), the record saying `session_expired` (a caller gone without a BYE is caught by
signalling, not only by RTP inactivity).

This module runs its own engine with `min_se: 5` (RFC 4028 allows no less than 90; the small floor lets a
caller ask for intervals of seconds, so an expiry test takes ten seconds, not fifteen minutes). Every wait is
on an event: SIPp's `<recv>` of the engine's refresh or BYE, the engine's finished record.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterator

import pytest

from ivr.testing.sippeer import SippMessage
from tests.integration.engine.conftest import RunningEngine, stop_engine
from tests.integration.protocol.conftest import (
    HOLD_NUMBER,
    KEYS_NUMBER,
    engine_for_protocols,
    finished_call,
    fresh_number,
)
from tests.integration.protocol.peer import PeerRun, run_peer
from tests.integration.protocol.test_engine_answers import digits_entered, press, sipp_pcaps
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]

MIN_SE_S = 5
"""The engine's Min-SE in this module (config `min_se`)."""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    running = engine_for_protocols(tmp_path_factory.mktemp("timers"), [], min_se=MIN_SE_S)
    try:
        yield running
    finally:
        stop_engine(running)


def _finals(run: PeerRun, method: str) -> list[str]:
    """The final responses SIPp received to its `method` requests, as start lines, in order."""
    return [m.start_line for m in run.received("SIP/2.0") if m.cseq_method == method and (m.status or 0) >= 200]


def _answer(run: PeerRun) -> SippMessage:
    """The engine's (last) 200 to SIPp's INVITE."""
    return [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"][-1]


def _origin(body: str) -> tuple[str, ...]:
    (origin,) = re.findall(r"^o=(.*)$", body, re.MULTILINE)
    return tuple(origin.split())


def _media(body: str) -> list[str]:
    return re.findall(r"^(?:m|c)=.*$", body, re.MULTILINE)


def _tags(message: SippMessage, header: str) -> list[str]:
    return [t.strip().lower() for t in (message.header(header) or "").split(",") if t.strip()]


async def test_a_caller_that_refreshes_keeps_its_call_and_every_200_carries_the_timer(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    caller = fresh_number("1370009")
    run = await run_peer("uac_session_timer.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller, "keys": press("4#", sipp_pcaps())}, timeout_s=40.0)
    assert run.returncode == 0, run.explain()
    assert _finals(run, "INVITE") == ["SIP/2.0 200 OK"] * 2, run.explain()
    assert _finals(run, "UPDATE") == ["SIP/2.0 200 OK"], run.explain()
    answer, refreshed = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"]
    (updated,) = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "UPDATE"]
    for response in (answer, refreshed, updated):
        assert response.header("Session-Expires") == "90;refresher=uac", response.text
        assert "timer" in _tags(response, "Require"), response.text
    assert "timer" in _tags(answer, "Supported"), answer.text
    # The refresh changed nothing: same session (o= id; a version that never goes back), same media.
    first, again = _origin(answer.body), _origin(refreshed.body)
    assert (first[0], first[1], first[3:]) == (again[0], again[1], again[3:])
    assert int(again[2]) >= int(first[2])
    assert _media(refreshed.body) == _media(answer.body)
    assert updated.body == "", "a refresh without an offer gets no SDP back"
    assert not run.received("UPDATE") and len(run.received("INVITE")) == 0, "the caller refreshes, not the engine"
    # The keys pressed after both refreshes were heard over the same media: the call went on.
    assert run.received("BYE"), "the engine hangs up once it has the digits"
    detail = await finished_call(engine, caller)
    assert digits_entered(detail) == "4"


async def test_a_caller_that_stops_refreshing_is_hung_up_before_expiry_and_the_record_says_why(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    caller, interval_s = fresh_number("1370009"), 15
    bye_after_s = interval_s - min(32, interval_s / 3)  # RFC 4028 10: 10 s
    run = await run_peer("uac_stops_refreshing.xml", engine.sip_port, tmp_path, service=HOLD_NUMBER,
                         values={"caller": caller, "interval": interval_s, "wait_ms": 30000}, timeout_s=45.0)
    assert run.returncode == 0, run.explain()
    answer = _answer(run)
    assert answer.header("Session-Expires") == f"{interval_s};refresher=uac", answer.text
    (bye,) = run.received("BYE")
    # Sent by the engine's session timer: not before the RFC's moment (the 200 left the engine a moment
    # before SIPp logged it), and before the session would have expired.
    assert bye_after_s - 0.5 <= bye.at - answer.at < interval_s, (bye.at - answer.at, run.explain())
    assert "session expired" in (bye.header("Reason") or "").lower(), bye.text
    detail = await finished_call(engine, caller)
    steps = [s for s in detail["journey"] if s.get("data", {}).get("failure") == "session_expired"]
    assert steps, f"the journey does not say the session expired: {json.dumps(detail)[:2000]}"
    assert detail["record"]["outcome"] == "error", detail["record"]


async def test_an_interval_below_min_se_gets_422_with_the_engines_min_se_and_the_retry_is_answered(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    caller = fresh_number("1370009")
    run = await run_peer("uac_session_too_small.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller, "short": MIN_SE_S - 2, "min_se": MIN_SE_S})
    assert run.returncode == 0, run.explain()
    assert _finals(run, "INVITE") == ["SIP/2.0 422 Session Interval Too Small", "SIP/2.0 200 OK"], run.explain()
    (refused,) = run.received("SIP/2.0 422")
    assert refused.header("Min-SE") == str(MIN_SE_S), refused.text
    assert _answer(run).header("Session-Expires") == f"{MIN_SE_S};refresher=uac", _answer(run).text
    detail = await finished_call(engine, caller)
    assert not detail["in_progress"]
    calls = engine.get(f"/api/calls?caller={caller}")["calls"]
    assert len(calls) == 1, f"the refused INVITE must not have become a call: {calls}"


async def test_a_caller_requiring_timers_is_answered_with_require_timer(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    caller = fresh_number("1370009")
    run = await run_peer("uac_require_timer.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller})
    assert run.returncode == 0, run.explain()
    assert _finals(run, "INVITE") == ["SIP/2.0 200 OK"], run.explain()
    answer = _answer(run)
    assert "timer" in _tags(answer, "Require"), answer.text
    assert answer.header("Session-Expires") == "1800;refresher=uac", answer.text
    assert not run.received("SIP/2.0 420")
    detail = await finished_call(engine, caller)
    assert not detail["in_progress"]


@pytest.mark.parametrize(
    ("scenario", "refresh"),
    [("uac_refreshed_by_update.xml", "UPDATE"), ("uac_refreshed_by_reinvite.xml", "INVITE")],
    ids=["asked-to-refresh:by-update", "left-to-the-engine:by-reinvite"],
)
async def test_the_engine_as_refresher_refreshes_at_half_the_interval(
    engine: RunningEngine, tmp_path: pathlib.Path, scenario: str, refresh: str
) -> None:
    caller, interval_s = fresh_number("1370009"), 8
    run = await run_peer(scenario, engine.sip_port, tmp_path, service=HOLD_NUMBER,
                         values={"caller": caller, "interval": interval_s, "wait_ms": 20000}, timeout_s=40.0)
    assert run.returncode == 0, run.explain()
    answer = _answer(run)
    assert answer.header("Session-Expires") == f"{interval_s};refresher=uas", answer.text
    (request,) = run.received(refresh)
    assert request.header("Session-Expires") == f"{interval_s};refresher=uac", request.text
    assert "timer" in _tags(request, "Supported"), request.text
    assert interval_s / 2 - 0.5 <= request.at - answer.at < interval_s, (request.at - answer.at, run.explain())
    if refresh == "INVITE":  # the current SDP again: same session, same version, same media
        assert _origin(request.body) == _origin(answer.body), request.text
        assert _media(request.body) == _media(answer.body)
        assert run.received("ACK"), "the engine ACKs the 200 to its re-INVITE"
    else:
        assert request.body == "", "a refresh by UPDATE carries no offer"
    assert _finals(run, "BYE") == ["SIP/2.0 200 OK"], "the call was still up after the refresh"
    detail = await finished_call(engine, caller)
    assert not detail["in_progress"]
