"""Session timers (RFC 4028) against the running engine, with SIPp as the caller.

The engine does not implement the extension (it says `Supported: replaces` only): it never refreshes a
session nor ends one whose refreshes stop. What it must still do, for a trunk that runs timers itself:
answer the caller's refreshes, by re-INVITE with an unchanged SDP and by UPDATE without a body, with
200s that leave the call and its media as they were, and never claim the extension in them (no
`Require: timer`, no `Session-Expires`: RFC 4028 9, the refresher is then the caller); refuse a caller
that *requires* timers with 420 naming `timer` in Unsupported (RFC 3261 8.2.2.3), after which the caller
tries again offering them only and is answered. A 422 (Session-Expires below Min-SE) is for a UAS that
supports timers: this engine never sends one, so no test here waits for it.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.integration.engine.conftest import RunningEngine
from tests.integration.protocol.conftest import KEYS_NUMBER, finished_call, fresh_number
from tests.integration.protocol.peer import PeerRun, run_peer
from tests.integration.protocol.test_engine_answers import digits_entered, press, sipp_pcaps
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]


def _finals(run: PeerRun, method: str) -> list[str]:
    """The final responses SIPp received to its `method` requests, as start lines, in order."""
    return [m.start_line for m in run.received("SIP/2.0") if m.cseq_method == method and (m.status or 0) >= 200]


def _origin(body: str) -> tuple[str, ...]:
    (origin,) = re.findall(r"^o=(.*)$", body, re.MULTILINE)
    return tuple(origin.split())


def _media(body: str) -> list[str]:
    return re.findall(r"^(?:m|c)=.*$", body, re.MULTILINE)


async def test_refreshes_by_reinvite_and_update_are_answered_and_keep_the_call(
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
        assert "timer" not in (response.header("Require") or ""), response.text
        assert response.header("Session-Expires") is None, response.text
    # The refresh changed nothing: same session (o= id; a version that never goes back), same media.
    first, again = _origin(answer.body), _origin(refreshed.body)
    assert (first[0], first[1], first[3:]) == (again[0], again[1], again[3:])
    assert int(again[2]) >= int(first[2])
    assert _media(refreshed.body) == _media(answer.body)
    assert updated.body == "", "a refresh without an offer gets no SDP back"
    # The keys pressed after both refreshes were heard over the same media: the call went on.
    assert run.received("BYE"), "the engine hangs up once it has the digits"
    detail = await finished_call(engine, caller)
    assert digits_entered(detail) == "4"


async def test_a_caller_requiring_timers_is_refused_420_then_answered_without(
    engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    caller = fresh_number("1370009")
    run = await run_peer("uac_require_timer.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller})
    assert run.returncode == 0, run.explain()
    assert _finals(run, "INVITE") == ["SIP/2.0 420 Bad Extension", "SIP/2.0 200 OK"], run.explain()
    (refused,) = run.received("SIP/2.0 420")
    assert [e.strip() for e in (refused.header("Unsupported") or "").split(",")] == ["timer"], refused.text
    (answered,) = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"]
    assert answered.header("Session-Expires") is None, answered.text
    detail = await finished_call(engine, caller)
    assert not detail["in_progress"]
    calls = engine.get(f"/api/calls?caller={caller}")["calls"]
    assert len(calls) == 1, f"the refused INVITE must not have become a call: {calls}"
