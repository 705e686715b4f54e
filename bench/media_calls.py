"""Media through the engine: N concurrent real calls into `ivr serve`, RTP pacing measured at the caller.

The engine (`ivr serve`, uvloop) runs a minimal flow from a temp flows dir: number 7001 is a key menu
that repeats its prompt on no input (comfort silence between) until the caller hangs up. This process
places N calls with our SIP user agent (at 50 calls/s) whose SDP offers all point at one receiver
socket in a separate process, which timestamps every arrival in the kernel (SO_TIMESTAMPNS; the
receiver of `bench.media`), so the figures are the engine's pacing, not this process's scheduling.
Streams are told apart by the engine's source port. Per stream, each inter-packet gap's deviation
from 20 ms is taken over a window after warm-up; loss is packets missing from 50 a second per stream.
The engine process is given SCHED_RR priority when the OS allows it, as media servers run and as
`bench.media` runs its sender (`--no-realtime` to compare).

    .venv/bin/python -m bench.media_calls [--calls 100,300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import multiprocessing as mp
import os
import pathlib
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from bench.media import STOP, analyse, receiver  # noqa: E402
from bench.sip_cps import _cpu_s, serve_flow  # noqa: E402
from ivr.clock import LoopClock  # noqa: E402
from ivr.sip.sdp import make_offer  # noqa: E402
from ivr.sip.transport import SipTransport  # noqa: E402
from ivr.sipua.calls import CallFailed  # noqa: E402
from ivr.sipua.leg import CallLeg  # noqa: E402
from ivr.sipua.useragent import UserAgent  # noqa: E402

LOOP_FLOW = """\
id: media_calls
version: "1"
description: media benchmark - a key menu that repeats its prompt until the caller hangs up
numbers: ["7001"]
dialects: [en]
default_dialect: en
queues: [general]
on_error: {queue: general}
start: talk
prompts:
  talk:
    en: Thank you for calling the customer service hotline. All of our agents are busy helping other
      customers. Please stay on the line and your call will be answered in turn.
nodes:
  talk:
    type: menu
    prompt: talk
    keys: {"1": bye}
    no_input: {max: 60}
    on_fail: bye
  bye: {type: hangup}
"""
SETUP_CPS = 50.0
WARMUP_S = 2.0


@dataclass(slots=True)
class Figures:
    calls: int
    answered: int
    expected: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    worst_stream_p99_ms: float
    engine_cpu_pct: float


def start_engine(workdir: pathlib.Path, realtime: bool) -> tuple[subprocess.Popen[bytes], int, str]:
    proc, sip, _http = serve_flow(workdir, LOOP_FLOW)
    if not realtime:
        return proc, sip, "normal"
    try:  # the engine is the media sender here: give it what bench.media gives its sender
        os.sched_setscheduler(proc.pid, os.SCHED_RR, os.sched_param(20))
        return proc, sip, "SCHED_RR 20"
    except (OSError, AttributeError):
        return proc, sip, "normal (SCHED_RR refused)"


async def run(count: int, seconds: float, engine_pid: int, sip_port: int) -> Figures:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver, args=(child,), daemon=True)
    proc.start()
    media_port = parent.recv()
    transport = await SipTransport.open("127.0.0.1", 0)
    ua = UserAgent(transport, LoopClock(), user="bench", user_agent="ivr-bench-media-calls")
    uri = f"sip:7001@127.0.0.1:{sip_port}"
    legs: list[CallLeg] = []

    async def place(n: int) -> None:
        offer = make_offer(local_address="127.0.0.1", local_port=media_port, session_id=secrets.randbelow(2**31),
                           dtmf_payload_type=101)
        outgoing = ua.invite(uri, offer.serialize(), from_user=f"1380000{n:04d}")
        try:
            async with asyncio.timeout(32):
                legs.append(await outgoing.answered())
        except (CallFailed, TimeoutError):
            pass

    started = time.monotonic()
    placing = []
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / SETUP_CPS - time.monotonic()))
        placing.append(asyncio.create_task(place(n)))
    await asyncio.gather(*placing)
    await asyncio.sleep(WARMUP_S)
    start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    cpu0, wall0 = _cpu_s(engine_pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, wall1 = _cpu_s(engine_pid), time.monotonic()
    end_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    await asyncio.gather(*(leg.bye() for leg in legs), return_exceptions=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.sendto(STOP, ("127.0.0.1", media_port))
    ports_raw, stamps_raw = parent.recv()
    proc.join(10)
    await ua.close()
    await transport.close()
    deviation, per_stream, received = analyse(ports_raw, stamps_raw, start_ns, end_ns)
    if deviation.size == 0:
        deviation = per_stream = np.array([float("nan")])
    return Figures(
        calls=count, answered=len(legs), expected=int(len(legs) * seconds * 50), received=received,
        p50_ms=float(np.percentile(deviation, 50)), p99_ms=float(np.percentile(deviation, 99)),
        max_ms=float(deviation.max()), worst_stream_p99_ms=float(per_stream.max()),
        engine_cpu_pct=100.0 * (cpu1 - cpu0) / (wall1 - wall0),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_calls")
    parser.add_argument("--calls", default="100,300", help="concurrent calls per round, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per round")
    parser.add_argument("--no-realtime", action="store_true", help="leave the engine at normal priority")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    import uvloop

    counts = [int(n) for n in args.calls.split(",") if n.strip()]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="media_calls_") as tmp:
        engine, sip_port, priority = start_engine(pathlib.Path(tmp), not args.no_realtime)
        try:
            for count in counts:
                results.append(uvloop.run(run(count, args.seconds, engine.pid, sip_port)))
                print(f"   {count} calls done", file=sys.stderr, flush=True)
                time.sleep(2.0)  # let the engine finish the BYEs and records before the next round
        finally:
            engine.terminate()
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.media_calls --calls {args.calls} --seconds {args.seconds:g}" + (
        " --no-realtime" if args.no_realtime else "")
    print("## Media through the engine: concurrent real calls (media_calls)\n")
    print(f"Command: `{command}` · machine: {platform.machine()}, nproc {os.cpu_count()} · date: {now} · "
          f"engine priority: {priority} · load average before: {load}\n")
    print("`ivr serve` repeats a menu prompt to N calls placed by our SIP UA (50 calls/s); every call's RTP "
          "goes to one receiver process that timestamps arrivals in the kernel (SO_TIMESTAMPNS). Deviation = "
          f"|inter-packet gap − 20 ms| over all gaps of all streams in a {args.seconds:g} s window after "
          f"{WARMUP_S:g} s warm-up; loss = packets missing from 50/s per answered call. Engine CPU: 100% = one "
          "core.\n")
    print("| calls | answered | packets expected | received | loss % | p50 dev (ms) | p99 dev (ms) | max dev (ms) "
          "| worst stream p99 (ms) | engine CPU |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in results:
        loss = 100.0 * max(0, f.expected - f.received) / f.expected if f.expected else float("nan")
        print(f"| {f.calls} | {f.answered} | {f.expected:,} | {f.received:,} | {loss:.2f} | {f.p50_ms:.3f} "
              f"| {f.p99_ms:.3f} | {f.max_ms:.2f} | {f.worst_stream_p99_ms:.3f} | {f.engine_cpu_pct:.0f}% |")
    print()
    return 0 if results and all(f.answered == f.calls for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
