"""Fuzz a running engine: 10,000 mutated SIP datagrams and 10,000 mutated RTP packets (the latter on a
live call's media port, from the address the call latched to, so they reach the RTP parser), while a
legitimate caller's call goes on. The engine must stay up (healthz), log no traceback or error, and the
legitimate call must complete and reach its queue. Loopback only, about a minute."""

from __future__ import annotations

import asyncio
import pathlib
import random
import socket
import time
import urllib.request

import pytest

from ivr.testing.caller import Keys, Pause, TestCaller
from tests.integration.security.mutate import rtp_packet, sip_datagram
from tests.integration.security.peers import ATTACKER, RawCall, secured_engine

pytestmark = pytest.mark.integration

DATAGRAMS = 10_000
SIP_RATE = 700.0
RTP_RATE = 1000.0


def paced(count: int, rate: float, send: object) -> None:
    started = time.monotonic()
    for i in range(count):
        send(i)  # type: ignore[operator]
        if i % 50 == 49:
            lag = started + (i + 1) / rate - time.monotonic()
            if lag > 0:
                time.sleep(lag)


def fuzz_sip(port: int, seed: int) -> None:
    rng = random.Random(seed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ATTACKER, 0))
        src = sock.getsockname()[1]
        paced(DATAGRAMS, SIP_RATE, lambda n: sock.sendto(
            sip_datagram(rng, n, port=port, src=src, user_weights=(0.02, 0.98)), ("127.0.0.1", port)))


def fuzz_rtp(call: RawCall, seed: int) -> None:
    rng = random.Random(seed)
    assert call.remote_rtp is not None
    target = ("127.0.0.1", call.remote_rtp[1])
    paced(DATAGRAMS, RTP_RATE, lambda n: call.rtp.sendto(rtp_packet(rng, n, 0x5EC0), target))


def healthz(engine_api: str) -> int:
    with urllib.request.urlopen(f"{engine_api}/healthz", timeout=5) as response:
        return int(response.status)


async def test_mutated_sip_and_rtp_crash_nothing_and_a_call_in_progress_completes(tmp_path: pathlib.Path) -> None:
    with secured_engine(tmp_path, trunks="127.0.0.0/8") as engine:
        caller = await TestCaller.open(rtp_ports=(47000, 47098))
        try:
            legit = asyncio.create_task(caller.call(engine.uri, [Pause(1.5), Keys("0"), Pause(40.0)], linger_s=0.0,
                                                    from_number="13800138000"))
            await asyncio.sleep(3.0)  # the legit caller is in the flow, on its way to the queue
            fuzz_call = RawCall(engine)
            try:
                assert await asyncio.to_thread(fuzz_call.invite) == 200
                await asyncio.gather(asyncio.to_thread(fuzz_sip, engine.sip_port, 15),
                                     asyncio.to_thread(fuzz_rtp, fuzz_call, 16))
                assert engine.process.poll() is None, "the engine died under fuzzing"
                assert await asyncio.to_thread(healthz, engine.api) == 200
                fuzz_call.bye()
            finally:
                fuzz_call.close()
            report = await legit
        finally:
            await caller.close()
        assert report.answered and report.hangup_by == "caller", report.timeline
        assert report.packets_received > 40 * 50 * 0.8, report.packets_received  # its audio kept flowing
        record = (await asyncio.to_thread(engine.call_detail, report.call_id))["record"]
        assert record["queue"] == "general", record
        assert "Traceback" not in engine.log.read_text(encoding="utf-8", errors="replace")
