"""Live calls from the Debian `linphonec` console phone into `ivr serve` (issue 24).

With linphone's default settings its offer carries its IPv6 address (`c=IN IP6 fd00::2` here) while
its packets come from 127.0.0.1; with IPv6 off it offers an IPv4 address. Either way, and whatever
the key signalling (RFC 4733, SIP INFO, dual tones in the audio), key 0 on the hotline must reach
queue general, and the media statistics of the call must make sense (`lost` never negative).
"""

from __future__ import annotations

import pathlib

import pytest

from tests.integration.engine.agents import wait_for_log
from tests.integration.engine.conftest import RunningEngine, free_port
from tests.integration.engine.test_media_interop import finished_call_of
from tests.integration.linphone.conftest import engine_log, free_even_udp_port
from tests.integration.linphone.linphone import LINPHONEC, KeyMethod, linphonec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(LINPHONEC.missing, reason=LINPHONEC.reason),
]

ASK_WITHIN_S = 30.0
"""The hotline's Mandarin greeting lasts about 7.6 s; the open question (where 0 means a human) follows."""
QUEUED_WITHIN_S = 30.0
"""From the key to the caller waiting in the queue: the transfer announcement plays first."""


SETTINGS = [
    pytest.param(True, id="default-ipv6-offer"),
    pytest.param(False, id="ipv4"),
]


@pytest.mark.parametrize("ipv6", SETTINGS)
@pytest.mark.parametrize("keys", list(KeyMethod), ids=lambda k: k.value)
async def test_key_zero_from_linphone_reaches_queue_general(
    engine: RunningEngine, microphone: pathlib.Path, tmp_path: pathlib.Path, ipv6: bool, keys: KeyMethod
) -> None:
    number = f"1370000{3 if ipv6 else 4}{list(KeyMethod).index(keys)}{free_port() % 100:02d}"
    async with linphonec(tmp_path, number=number, keys=keys, sip_port=free_port(),
                         rtp_port=free_even_udp_port(), ipv6=ipv6) as phone:
        await phone.command(f"call sip:95519@127.0.0.1:{engine.sip_port}")
        await phone.wait_for("connected", 20)
        await phone.command(f"play {microphone}")
        await phone.wait_for("Media streams established", 10)
        (invite, *_) = await wait_for_log(engine, "invite_received", 20.0, caller=number)
        # Key 0 means a human once the open question plays (after the greeting): press it then.
        await wait_for_log(engine, "prompt_played", ASK_WITHIN_S, call_id=invite["call_id"], prompt="ask_need")
        await phone.command("0")
        await wait_for_log(engine, "call_enqueued", QUEUED_WITHIN_S, call_id=invite["call_id"], queue="general")
        await phone.command("terminate")  # nobody answers queue general here: hang up as a caller would
        detail = await finished_call_of(engine, number, timeout_s=20.0)
    offer = phone.log.read_text(errors="replace")
    assert ("c=IN IP6" in offer) is ipv6, "linphone's offer is not the one this case is about"
    record = detail["record"]
    assert record["queue"] == "general", (record, [e["kind"] for e in detail["journey"]])
    closed = [e for e in engine_log(engine, record["call_id"]) if e.get("event") == "rtp_session_closed"]
    assert closed and all(e["lost"] >= 0 for e in closed), closed
    assert all(e["received"] > 0 and e["send_errors"] == 0 for e in closed), closed
