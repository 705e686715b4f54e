"""TLS signalling and SRTP media against plain UDP/RTP, in the same run on the same `ivr serve`.

One engine listens on UDP and on `tls://` (a self-signed certificate made for the run), with
`srtp: optional`; its flow plays a short prompt and then waits for a key, so the caller always hangs up.
The callers are our own SIP stack in this process (SIPp here is built without OpenSSL):

* **calls/s**: at each offered rate, `rate * seconds` calls (INVITE, 200, ACK, 200 ms of media, BYE),
  over UDP, over TLS on one connection (a trunk: every call on one TLS session), and over TLS with a
  new connection per call (phones: a TLS handshake per call). Setup = INVITE sent to 200 received.
* **media CPU**: `--media-calls` concurrent calls held for `--media-seconds`, all plain RTP, then all
  SRTP (AES_CM_128_HMAC_SHA1_80, SDES keys in the SDP); both directions carry 50 packets/s per call
  (the engine's prompt/silence, the caller's silence). CPU is the engine process only.

Compare the columns as ratios: the machine is shared, and the caller process shares its two cores.

    .venv/bin/python -m bench.tls [--rates 20,40] [--seconds 4] [--media-calls 40] [--media-seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import pathlib
import platform
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import yaml

from bench.sip_cps import _cpu_s, _free_port, _percentile, serve_flow
from ivr.clock import LoopClock
from ivr.rtp import MediaEngine, MediaParams, SrtpKeys
from ivr.sip.endpoint import TransportKind
from ivr.sip.sdes import SECURE_PROTO, CryptoAttribute
from ivr.sip.sdp import SessionDescription, make_offer, negotiated_codec
from ivr.sip.transport import SipTransport, run
from ivr.sipua.leg import CallLeg
from ivr.sipua.useragent import UserAgent

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITE = "AES_CM_128_HMAC_SHA1_80"
NUMBER = "7000"

FLOW = f"""\
id: bench_tls
version: "1"
description: TLS/SRTP benchmark - a short prompt, then wait for a key the caller never presses
numbers: ["{NUMBER}"]
dialects: [en]
default_dialect: en
queues: [general]
start: hello
prompts:
  hello: {{en: "Thank you for calling."}}
nodes:
  hello: {{type: collect, prompt: hello, store: key, speech: false, max_length: 1, timeout_s: 120, next: bye}}
  bye: {{type: hangup}}
"""


@dataclass(slots=True)
class Engine:
    proc: subprocess.Popen[bytes]
    udp_port: int
    tls_port: int


def make_certificate(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def start_engine(workdir: pathlib.Path, cert: pathlib.Path, key: pathlib.Path) -> Engine:
    tls = _free_port()
    config = workdir / "ivr.yaml"
    config.write_text(yaml.safe_dump({"listen": [f"tls://127.0.0.1:{tls}"], "tls_certificate": str(cert),
                                      "tls_private_key": str(key), "srtp": "optional", "max_calls": 5000}))
    proc, udp, _http = serve_flow(workdir, FLOW, "--config", str(config))
    return Engine(proc, udp, tls)


class Callers:
    """Our SIP UA and media engine placing calls at the engine, plain or SRTP, over UDP or TLS."""

    def __init__(self, media: MediaEngine, client_tls: ssl.SSLContext) -> None:
        self.media = media
        self.client_tls = client_tls
        self.clock = LoopClock()

    async def user_agent(self, kind: TransportKind) -> UserAgent:
        transport = await SipTransport.open("127.0.0.1", 0, kind=kind, clock=self.clock, client_ssl=self.client_tls)
        return UserAgent(transport, self.clock, user="bench")

    async def call(self, ua: UserAgent, port: int, hold: Callable[[], Awaitable[None]], *, srtp: bool) -> float:
        """One call held while `hold()` runs; returns its setup time (INVITE → 200) in seconds."""
        session = await self.media.open_session(call_id=f"bench-{secrets.token_hex(4)}")
        try:
            offer = make_offer(local_address="127.0.0.1", local_port=session.local_port,
                               session_id=secrets.randbelow(2**31))
            our_key = os.urandom(30)
            if srtp:
                offer.media[0].proto = SECURE_PROTO
                offer.media[0].attributes.append(("crypto", str(CryptoAttribute(1, SUITE, our_key))))
            started = time.perf_counter()
            outgoing = ua.invite(f"sip:{NUMBER}@127.0.0.1:{port}", offer.serialize(), from_user="bench")
            async with asyncio.timeout(10):
                leg = await outgoing.answered()
            setup = time.perf_counter() - started
            session.start(MediaParams(remote=_remote(leg), srtp=_keys(leg, our_key) if srtp else None))
            await hold()
            await leg.bye()
            return setup
        finally:
            self.media.release(session)


def _remote(leg: CallLeg) -> tuple[str, int]:
    remote = negotiated_codec(SessionDescription.parse(leg.remote_sdp))
    return remote.remote_address, remote.remote_port


def _keys(leg: CallLeg, our_key: bytes) -> SrtpKeys:
    answer = SessionDescription.parse(leg.remote_sdp)
    for name, value in answer.media[0].attributes:
        crypto = CryptoAttribute.parse(value or "") if name == "crypto" else None
        if crypto is not None and crypto.usable:
            return SrtpKeys(crypto.suite, our_key, crypto.key)
    raise RuntimeError("the engine answered an SRTP offer without a=crypto")


@dataclass(slots=True)
class RateStep:
    transport: str
    rate: int
    calls: int
    failed: int
    seconds: float
    setup_ms: list[float]
    cpu_s: float

    @property
    def achieved_cps(self) -> float:
        return (self.calls - self.failed) / self.seconds

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / max(1, self.calls - self.failed)


async def rate_step(callers: Callers, engine: Engine, transport: str, rate: int, seconds: float) -> RateStep:
    """`rate * seconds` calls started `1/rate` apart; every call holds 200 ms then hangs up."""
    count = int(rate * seconds)
    shared: UserAgent | None = None
    if transport != "tls-per-call":
        shared = await callers.user_agent(TransportKind.UDP if transport == "udp" else TransportKind.TLS)
    port = engine.udp_port if transport == "udp" else engine.tls_port

    async def one() -> float:
        ua = shared or await callers.user_agent(TransportKind.TLS)
        try:
            return await callers.call(ua, port, lambda: asyncio.sleep(0.2), srtp=False)
        finally:
            if shared is None:
                await ua.close()
                await ua.transport.close()

    cpu_before, started = _cpu_s(engine.proc.pid), time.perf_counter()
    tasks = []
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)  # the engine finishes the last records
    cpu = _cpu_s(engine.proc.pid) - cpu_before
    if shared is not None:
        await shared.close()
        await shared.transport.close()
    setups = [1000 * r for r in results if isinstance(r, float)]
    return RateStep(transport, rate, count, count - len(setups), elapsed, setups, cpu)


@dataclass(slots=True)
class MediaStep:
    media: str
    calls: int
    failed: int
    seconds: float
    cpu_s: float

    @property
    def cpu_pct_per_call(self) -> float:
        return 100 * self.cpu_s / self.seconds / max(1, self.calls - self.failed)


async def media_step(callers: Callers, engine: Engine, srtp: bool, calls: int, seconds: float) -> MediaStep:
    """`calls` concurrent calls (UDP signalling, 20 calls/s), the engine's CPU measured over `seconds`
    once all are up (after 2 s), then all hung up."""
    ua = await callers.user_agent(TransportKind.UDP)
    measured = asyncio.Event()

    async def hold() -> None:
        await measured.wait()

    tasks = []
    for _ in range(calls):
        tasks.append(asyncio.create_task(callers.call(ua, engine.udp_port, hold, srtp=srtp)))
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)
    cpu_before, started = _cpu_s(engine.proc.pid), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, elapsed = _cpu_s(engine.proc.pid) - cpu_before, time.perf_counter() - started
    failed = sum(1 for t in tasks if t.done())  # a call that already ended did not carry media all along
    measured.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await ua.close()
    await ua.transport.close()
    await asyncio.sleep(1.0)
    return MediaStep("SRTP" if srtp else "RTP", calls, failed, elapsed, cpu)


def report(rates: Sequence[RateStep], media: Sequence[MediaStep], command: str, load: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## TLS signalling and SRTP media beside UDP/RTP (tls)", "",
        f"Command: `{command}` · machine: {platform.machine()}, nproc {os.cpu_count()}, Python "
        f"{platform.python_version()} · date: {now} · load average before: {load} · **shared machine** (other "
        "engineers' builds and tests run on the same 2 cores): compare the rows as ratios within this run.", "",
        "One `ivr serve` (UDP + `tls://` listener, self-signed RSA-2048 certificate, `srtp: optional`); callers are "
        "our own SIP stack in the bench process (SIPp here has no TLS). Each call: INVITE, 200, ACK, 200 ms, BYE. "
        "`tls` = every call on one TLS connection (a trunk); `tls-per-call` = a TLS handshake per call (phones). "
        "Engine CPU only (100% = one core). Where achieved cps falls below the offered rate, the caller process "
        "(the client half of every handshake, in Python on the same cores) can be the limit: read engine CPU per call.",
        "",
        "| transport | offered cps | calls | failed | achieved cps | setup p50 ms | setup p99 ms "
        "| engine CPU ms/call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in rates:
        lines.append(f"| {s.transport} | {s.rate} | {s.calls} | {s.failed} | {s.achieved_cps:.1f} | "
                     f"{_percentile(s.setup_ms, 0.5):.1f} | {_percentile(s.setup_ms, 0.99):.1f} | "
                     f"{s.cpu_ms_per_call:.2f} |")
    lines += ["", "| media | concurrent calls | ended early | window s | engine CPU % | engine CPU % per call |",
              "|---|---:|---:|---:|---:|---:|"]
    for m in media:
        lines.append(f"| {m.media} | {m.calls} | {m.failed} | {m.seconds:.1f} | {100 * m.cpu_s / m.seconds:.1f} | "
                     f"{m.cpu_pct_per_call:.3f} |")
    lines.append("")
    by = {(s.transport, s.rate): s for s in rates}
    for rate in sorted({s.rate for s in rates}):
        udp = by.get(("udp", rate))
        for name in ("tls", "tls-per-call"):
            other = by.get((name, rate))
            if udp is not None and other is not None and udp.cpu_ms_per_call > 0:
                ratio = other.cpu_ms_per_call / udp.cpu_ms_per_call
                lines.append(f"- {rate} cps, {name} / udp: engine CPU per call **{ratio:.2f}x** "
                             f"({other.cpu_ms_per_call:.2f} vs {udp.cpu_ms_per_call:.2f} ms), "
                             f"failed {other.failed} vs {udp.failed}")
    plain = next((m for m in media if m.media == "RTP"), None)
    secure = next((m for m in media if m.media == "SRTP"), None)
    if plain is not None and secure is not None and plain.cpu_pct_per_call > 0:
        ratio = secure.cpu_pct_per_call / plain.cpu_pct_per_call
        lines.append(f"- SRTP / RTP media: engine CPU per call **{ratio:.2f}x** "
                     f"({secure.cpu_pct_per_call:.3f}% vs {plain.cpu_pct_per_call:.3f}% of one core per call, "
                     f"{secure.calls} calls, 50 packets/s each way)")
    return "\n".join(lines)


async def _run(args: argparse.Namespace, engine: Engine, cert: pathlib.Path) -> tuple[list[RateStep], list[MediaStep]]:
    client_tls = ssl.create_default_context(cafile=str(cert))
    media = MediaEngine(host="127.0.0.1", port_first=42000, port_last=46000)
    callers = Callers(media, client_tls)
    rates: list[RateStep] = []
    try:
        for rate in args.rates:
            for transport in ("udp", "tls", "tls-per-call"):
                step = await rate_step(callers, engine, transport, rate, args.seconds)
                print(f"   {transport} {rate} cps: {step.failed} failed, {step.cpu_ms_per_call:.2f} ms CPU/call",
                      file=sys.stderr, flush=True)
                rates.append(step)
        media_steps = []
        for srtp in (False, True):
            held = await media_step(callers, engine, srtp, args.media_calls, args.media_seconds)
            print(f"   {held.media}: {held.cpu_pct_per_call:.3f}% CPU per call", file=sys.stderr, flush=True)
            media_steps.append(held)
        return rates, media_steps
    finally:
        media.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="20,40", help="offered calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of calls per rate and transport")
    parser.add_argument("--media-calls", type=int, default=40)
    parser.add_argument("--media-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",")]
    command = ("python -m bench.tls " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    load = " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = pathlib.Path(tmp)
        cert, key = make_certificate(workdir)
        engine = start_engine(workdir, cert, key)
        try:
            rates, media = run(_run(args, engine, cert))
        finally:
            engine.proc.terminate()
            try:
                engine.proc.wait(30)
            except subprocess.TimeoutExpired:
                engine.proc.kill()
    print(report(rates, media, command, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
