"""Interop with SIPp: as caller, as registering softphone, and as the agent/trunk we call."""

from __future__ import annotations

import asyncio
import pathlib
import re

import pytest
from sip_peers import HOST, free_port, needs_sipp, run_sipp, scenario, sipp_uas

from ivr.sip.authorize import Credentials
from ivr.sip.events import ByeReceived, DtmfInfoReceived, ReinviteReceived
from ivr.sip.transport import TransportKind
from ivr.sipua.calls import CallFailed
from ivr.testing.sipharness import CallLog, Harness, start

pytestmark = [pytest.mark.integration, needs_sipp]


async def finished(harness: Harness, count: int = 1) -> list[CallLog]:
    async with asyncio.timeout(10):
        return [await harness.app.finished.get() for _ in range(count)]


async def test_call_is_answered_and_ends_on_the_callers_bye(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_basic.xml", tmp_path), harness.port, tmp_path, calls=3, rate=10)
    assert result.returncode == 0, result.explain()
    logs = await finished(harness, 3)
    assert all(log.answered and log.end_reason == "remote_bye" for log in logs)
    assert all(isinstance(log.events[-1], ByeReceived) for log in logs)
    assert {log.dialed for log in logs} == {"100"}
    assert harness.ua.legs == []


async def test_cancel_before_answer_gets_487(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_cancel.xml", tmp_path), harness.port, tmp_path, service="slow1")
    assert result.returncode == 0, result.explain()
    (log,) = await finished(harness)
    assert log.cancelled and not log.answered


async def test_options_is_answered_200_with_allow(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("options.xml", tmp_path), harness.port, tmp_path)
    assert result.returncode == 0, result.explain()


async def test_2xx_is_retransmitted_until_the_ack(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_lost_ack.xml", tmp_path), harness.port, tmp_path)
    assert result.returncode == 0, result.explain()
    # SIPp's final screen: "200 <---------- messages retrans ..."; the ACK leaves 1.2 s after the 200, so
    # the 200 was retransmitted at least once (T1 = 0.5 s); at most three times (0.5, 1.5, 3.5 s) even
    # when a loaded machine holds SIPp's ACK back by up to 2 s, and it stopped once the ACK came.
    ok_line = re.search(r"200 <-+\s+(\d+)\s+(\d+)", result.stdout)
    assert ok_line is not None, result.stdout[-2000:]
    assert int(ok_line.group(1)) == 1 and 1 <= int(ok_line.group(2)) <= 3, ok_line.group(0)
    (log,) = await finished(harness)
    assert log.answered and log.end_reason == "remote_bye"


async def test_calls_complete_with_ten_percent_packet_loss(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_basic.xml", tmp_path), harness.port, tmp_path, calls=10, rate=10,
                            extra=["-lost", "10", "-l", "10"], timeout_s=60)
    assert result.returncode == 0, result.explain()
    # Every count after the Messages column of SIPp's message table (retransmissions, lost packets):
    # all calls succeeded, so a non-zero sum means loss happened and was repaired.
    repaired = sum(
        int(n) for line in result.stdout.splitlines() if "<---" in line or "--->" in line
        for n in re.findall(r"\b\d+\b", line.split("----------")[-1].replace("-RTD1", ""))[1:]
    )
    assert repaired > 0, "SIPp lost nothing: the test did not exercise retransmission"
    logs = await finished(harness, 10)
    assert all(log.answered for log in logs)


@pytest.mark.parametrize(("service", "status"), [("unknown42", "404"), ("busy1", "486")], ids=["404", "486"])
async def test_refused_calls_get_their_status(harness: Harness, tmp_path: pathlib.Path, service: str,
                                              status: str) -> None:
    result = await run_sipp(scenario("uac_refused.xml", tmp_path, expect=status), harness.port, tmp_path,
                            service=service)
    assert result.returncode == 0, result.explain()


async def test_draining_refuses_new_calls_with_503(harness: Harness, tmp_path: pathlib.Path) -> None:
    harness.ua.drain()
    result = await run_sipp(scenario("uac_refused.xml", tmp_path, expect="503"), harness.port, tmp_path)
    assert result.returncode == 0, result.explain()


async def test_too_busy_refuses_with_503(tmp_path: pathlib.Path) -> None:
    busy = await start(HOST, 0, max_calls=0)
    try:
        result = await run_sipp(scenario("uac_refused.xml", tmp_path, expect="503"), busy.port, tmp_path)
        assert result.returncode == 0, result.explain()
    finally:
        await busy.close()


async def test_hold_reinvite_and_info_digit_reach_the_application(harness: Harness,
                                                                  tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_hold_info.xml", tmp_path), harness.port, tmp_path)
    assert result.returncode == 0, result.explain()
    (log,) = await finished(harness)
    reinvite, dtmf, bye = log.events
    assert isinstance(reinvite, ReinviteReceived) and reinvite.held
    assert b"a=recvonly" in reinvite.answer
    assert dtmf == DtmfInfoReceived("5", 160)
    assert isinstance(bye, ByeReceived)


async def test_we_hang_up_and_the_caller_gets_our_bye(harness: Harness, tmp_path: pathlib.Path) -> None:
    result = await run_sipp(scenario("uac_remote_bye.xml", tmp_path), harness.port, tmp_path,
                            service="hangup1")
    assert result.returncode == 0, result.explain()
    (log,) = await finished(harness)
    assert log.end_reason == "local_bye"


async def test_call_over_tcp(tmp_path: pathlib.Path) -> None:
    tcp = await start(HOST, 0, kind=TransportKind.TCP)
    try:
        result = await run_sipp(scenario("uac_basic.xml", tmp_path), tcp.port, tmp_path, calls=2,
                                transport="t1")
        assert result.returncode == 0, result.explain()
        logs = await finished(tcp, 2)
        assert all(log.answered and log.end_reason == "remote_bye" for log in logs)
    finally:
        await tcp.close()


async def test_softphone_registers_with_digest_and_deregisters(harness: Harness,
                                                               tmp_path: pathlib.Path) -> None:
    assert harness.registrar is not None
    auth = ["-au", "agent7", "-ap", "s3cret"]
    phone_port = free_port()
    result = await run_sipp(scenario("register_auth.xml", tmp_path), harness.port, tmp_path, service="agent7",
                            extra=auth, local_port=phone_port)
    assert result.returncode == 0, result.explain()
    (binding,) = harness.registrar.lookup("agent7", harness.ua.clock.now())
    assert (binding.contact.host, binding.contact.port, binding.contact.user) == (HOST, phone_port, "agent7")
    result = await run_sipp(scenario("unregister_auth.xml", tmp_path), harness.port, tmp_path,
                            service="agent7", extra=auth, local_port=phone_port)
    assert result.returncode == 0, result.explain()
    assert harness.registrar.lookup("agent7", harness.ua.clock.now()) == []


async def test_wrong_password_never_binds(harness: Harness, tmp_path: pathlib.Path) -> None:
    assert harness.registrar is not None
    result = await run_sipp(scenario("register_wrong_password.xml", tmp_path), harness.port, tmp_path,
                            service="agent7", extra=["-au", "agent7", "-ap", "wrong"], timeout_s=15)
    assert result.returncode == 0, result.explain()  # challenged again, never bound, never refused outright
    assert harness.registrar.lookup("agent7", harness.ua.clock.now()) == []


async def test_we_call_an_agent_with_intent_header_and_hang_up(harness: Harness,
                                                               tmp_path: pathlib.Path) -> None:
    async with sipp_uas(scenario("uas_basic.xml", tmp_path), tmp_path) as (port, sipp):
        offer = harness.app.answer_sdp(_offer())
        call = harness.ua.invite(f"sip:agent@{HOST}:{port}", offer, headers=[("X-IVR-Intent", "claims")])
        async with asyncio.timeout(10):
            leg = await call.answered()
        assert call.ringing.is_set()
        assert b"m=audio" in leg.remote_sdp
        await leg.bye()
        result = await sipp
    assert result.returncode == 0, result.explain()
    assert leg.end_reason == "local_bye"


async def test_we_answer_a_trunk_digest_challenge(harness: Harness, tmp_path: pathlib.Path) -> None:
    async with sipp_uas(scenario("uas_auth.xml", tmp_path), tmp_path) as (port, sipp):
        call = harness.ua.invite(f"sip:100@{HOST}:{port}", harness.app.answer_sdp(_offer()),
                                 credentials=Credentials("ivr", "trunkpass"))
        async with asyncio.timeout(10):
            leg = await call.answered()
        await leg.bye()
        result = await sipp
    assert result.returncode == 0, result.explain()


async def test_wrong_trunk_password_fails_the_call(harness: Harness, tmp_path: pathlib.Path) -> None:
    async with sipp_uas(scenario("uas_auth.xml", tmp_path), tmp_path) as (port, _):
        call = harness.ua.invite(f"sip:100@{HOST}:{port}", harness.app.answer_sdp(_offer()),
                                 credentials=Credentials("ivr", "nope"))
        with pytest.raises(CallFailed) as info:
            async with asyncio.timeout(10):
                await call.answered()
    assert info.value.status == 403


def _offer() -> bytes:
    return (
        b"v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
