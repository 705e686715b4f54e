"""Live calls from the Debian `linphonec` console phone into `ivr serve` (issue 24).

With linphone's default settings its offer carries its IPv6 address (`c=IN IP6 fd00::2` here) while
its packets come from 127.0.0.1; with IPv6 off it offers an IPv4 address. Either way, and whatever
the key signalling (RFC 4733, SIP INFO, dual tones in the audio), key 0 on the hotline must reach
queue general, and the media statistics of the call must make sense (`lost` never negative).

The six phones (key signalling x offer) call the module's engine at once, as six callers would; each case's
test judges its own call.
"""

from __future__ import annotations

import asyncio
import itertools
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

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


@dataclass(frozen=True)
class Call:
    offer: str
    """linphone's log: its SDP offer among the rest."""
    detail: dict[str, Any]
    """The engine's finished record and journey of the call."""
    closed: list[dict[str, Any]]
    """The engine's `rtp_session_closed` log entries of the call."""


async def call_with_key_zero(engine: RunningEngine, microphone: pathlib.Path, folder: pathlib.Path, ipv6: bool,
                             keys: KeyMethod) -> Call:
    number = f"1370000{3 if ipv6 else 4}{list(KeyMethod).index(keys)}{free_port() % 100:02d}"
    async with linphonec(folder, number=number, keys=keys, sip_port=free_port(),
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
    closed = [e for e in engine_log(engine, detail["record"]["call_id"]) if e.get("event") == "rtp_session_closed"]
    return Call(phone.log.read_text(errors="replace"), detail, closed)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calls(
    engine: RunningEngine, microphone: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[tuple[bool, KeyMethod], Call | BaseException]]:
    """Every case's call, placed at once; a call that failed holds its error, raised by its own test."""
    cases = list(itertools.product((True, False), KeyMethod))
    results = await asyncio.gather(
        *(call_with_key_zero(engine, microphone, tmp_path_factory.mktemp("linphone"), ipv6, keys)
          for ipv6, keys in cases),
        return_exceptions=True,
    )
    yield dict(zip(cases, results, strict=True))


@pytest.mark.parametrize("ipv6", SETTINGS)
@pytest.mark.parametrize("keys", list(KeyMethod), ids=lambda k: k.value)
def test_key_zero_from_linphone_reaches_queue_general(
    calls: dict[tuple[bool, KeyMethod], Call | BaseException], ipv6: bool, keys: KeyMethod
) -> None:
    call = calls[ipv6, keys]
    if isinstance(call, BaseException):
        raise call
    assert ("c=IN IP6" in call.offer) is ipv6, "linphone's offer is not the one this case is about"
    record = call.detail["record"]
    assert record["queue"] == "general", (record, [e["kind"] for e in call.detail["journey"]])
    closed = call.closed
    assert closed and all(e["lost"] >= 0 for e in closed), closed
    assert all(e["received"] > 0 and e["send_errors"] == 0 for e in closed), closed
