"""Media through the engine: N concurrent real calls into `ivr serve`, RTP pacing measured at the caller.

The engine (`ivr serve`, uvloop) runs a minimal flow from a temp flows dir: number 7001 is a key menu
that repeats its prompt on no input (comfort silence between) until the caller hangs up. This process
places N calls with our SIP user agent (at 50 calls/s) whose SDP offers all point at one receiver
socket in a separate process, which timestamps every arrival in the kernel (SO_TIMESTAMPNS; the
receiver of `bench.media`), so the figures are the engine's pacing, not this process's scheduling.
Streams are told apart by the engine's source port. Per stream, each inter-packet gap's deviation
from 20 ms is taken over a window after warm-up; loss is packets missing from 50 a second per stream.
The engine process is given SCHED_RR priority when the OS allows it, as media servers run and as
`bench.media` runs its sender (`--no-realtime` to compare). The engine's own figures come from its
`/metrics`: event-loop lag over the window, GC pauses over the whole round (issue 22).

`--workers N` runs `ivr serve --workers N`, by default as `ivr serve` runs: one worker per CPU (`workers: null`);
with more than one the calls come from 16 sockets (the kernel spreads the node's shared SIP port over the workers
by source address). `--workers 1` is the one-process engine of the figures before 2026-12-08. `--churn CPS` has
SIPp place short calls during the window, so the media is paced while the engine does signalling work; `--set
KEY=VALUE` passes an engine setting (e.g. `gc_tuned=false` for the GC's defaults); `--base-root DIR` runs every round
again against the engine of another checkout (a `git archive` of the commit before), for a before/after in one window.

    .venv/bin/python -m bench.media_calls [--calls 100,300] [--seconds 10] [--workers N] [--churn CPS] [--base-root DIR]
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
import urllib.request
from dataclasses import dataclass

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from bench.engine_process import children, start_engine  # noqa: E402
from bench.engine_process import cpu_s as _cpu_s  # noqa: E402
from bench.media import STOP, analyse, receiver  # noqa: E402
from ivr.clock import LoopClock  # noqa: E402
from ivr.config import default_workers  # noqa: E402
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
SOURCES = 16
"""Caller sockets when the engine has workers (SO_REUSEPORT spreads by source address)."""
CHURN_SCENARIO = ROOT / "tests" / "integration" / "sip" / "scenarios" / "uac_basic.xml"
WARMUP_S = 2.0


@dataclass(slots=True)
class Figures:
    tree: str
    """`this tree`, or `base` (the engine of `--base-root`)."""
    calls: int
    answered: int
    expected: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    worst_stream_p99_ms: float
    engine_cpu_pct: float
    engine: dict[str, float]
    """The engine's own loop-lag and GC figures over the round (`engine_figures`)."""


def start_node(workdir: pathlib.Path, realtime: bool, max_calls: int, workers: int,
               settings: list[str], root: pathlib.Path = ROOT) -> tuple[subprocess.Popen[bytes], int, int, str]:
    os.environ.setdefault("IVR_API_TOKEN", "ivr_" + secrets.token_hex(16))  # for /metrics
    extra = ["--set", f"max_calls={max_calls * workers}"] + [arg for setting in settings for arg in ("--set", setting)]
    proc, sip, http = start_engine(workdir, LOOP_FLOW, *extra, workers=workers, root=root)
    if not realtime:
        return proc, sip, http, "normal"
    try:  # the engine is the media sender here: give it what bench.media gives its sender
        for pid in [proc.pid, *children(proc.pid)]:  # with workers: the supervisor and each worker
            os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(20))
        return proc, sip, http, "SCHED_RR 20"
    except (OSError, AttributeError):
        return proc, sip, http, "normal (SCHED_RR refused)"


def scrape_all(http_ports: list[int]) -> dict[str, float]:
    """`scrape` of every worker, summed series by series."""
    total: dict[str, float] = {}
    for port in http_ports:
        for name, value in scrape(port).items():
            total[name] = total.get(name, 0.0) + value
    return total


def scrape(http_port: int) -> dict[str, float]:
    """The engine's loop-lag and GC histogram series from /metrics (name{labels} → value)."""
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics",
                                     headers={"Authorization": f"Bearer {os.environ['IVR_API_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    series: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("ivr_event_loop_lag_seconds", "ivr_gc_pause_seconds")):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def engine_figures(start: dict[str, float], before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Over the window (`before` → `after`): loop wake-ups later than 20 and 40 ms and the smallest histogram
    bound above every lag; over the whole round from the first call placed (`start` → `after`): full
    (generation 2) collections, their total pause, and the bound above every GC pause."""
    def delta(name: str) -> float:
        return after.get(name, 0.0) - (start if "gc_pause" in name else before).get(name, 0.0)

    def ceiling(prefix: str, labels: str) -> float:
        total = delta(f"{prefix}_count{{{labels}}}" if labels else f"{prefix}_count")
        bucket = f"{prefix}_bucket{{{labels}," if labels else f"{prefix}_bucket{{"
        bounds = sorted((float(k.rsplit('le="', 1)[1].rstrip('"}')), delta(k)) for k in after
                        if k.startswith(bucket) and "+Inf" not in k)
        return next((bound for bound, count in bounds if count >= total), float("inf")) if total else 0.0

    lag = "ivr_event_loop_lag_seconds"
    samples = delta(f"{lag}_count")
    return {
        "lag_over_20ms": samples - delta(f'{lag}_bucket{{le="0.02"}}'),
        "lag_over_40ms": samples - delta(f'{lag}_bucket{{le="0.04"}}'),
        "lag_ceiling_ms": 1000 * ceiling(lag, ""),
        "gc2": delta('ivr_gc_pause_seconds_count{generation="2"}'),
        "gc2_ms": 1000 * delta('ivr_gc_pause_seconds_sum{generation="2"}'),
        **{f"gc{g}_ceiling_ms": 1000 * ceiling("ivr_gc_pause_seconds", f'generation="{g}"') for g in "012"},
    }


def start_churn(sip_port: int, cps: float, seconds: float, workdir: pathlib.Path) -> subprocess.Popen[bytes] | None:
    """SIPp placing short calls (INVITE, ACK, 200 ms, BYE: `uac_basic.xml`) at `cps` for `seconds`: signalling
    work for the engine while it paces the long calls' media (None when `cps` is 0)."""
    if cps <= 0:
        return None
    calls = int(cps * seconds)
    return subprocess.Popen(
        ["sipp", "-sf", str(CHURN_SCENARIO), "-i", "127.0.0.1", "-p", "0", "-m", str(calls), "-r", str(cps),
         "-l", str(calls), "-nostdin", "-timeout", f"{int(seconds) + 30}s", "-s", "7001", f"127.0.0.1:{sip_port}"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def run(tree: str, count: int, seconds: float, engine_pid: int, sip_port: int, http_ports: list[int],
              churn_cps: float, workdir: pathlib.Path) -> Figures:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver, args=(child,), daemon=True)
    proc.start()
    media_port = parent.recv()
    # One source socket for one engine process; with workers, several, so the kernel spreads them.
    transports = [await SipTransport.open("127.0.0.1", 0) for _ in range(1 if len(http_ports) == 1 else SOURCES)]
    uas = [UserAgent(t, LoopClock(), user="bench", user_agent="ivr-bench-media-calls") for t in transports]
    uri = f"sip:7001@127.0.0.1:{sip_port}"
    legs: list[CallLeg] = []
    metrics_start = await asyncio.to_thread(scrape_all, http_ports)

    async def place(n: int) -> None:
        offer = make_offer(local_address="127.0.0.1", local_port=media_port, session_id=secrets.randbelow(2**31),
                           dtmf_payload_type=101)
        outgoing = uas[n % len(uas)].invite(uri, offer.serialize(), from_user=f"1380000{n:04d}")
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
    metrics0 = await asyncio.to_thread(scrape_all, http_ports)
    churn = start_churn(sip_port, churn_cps, seconds, workdir)
    start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    cpu0, wall0 = _cpu_s(engine_pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, wall1 = _cpu_s(engine_pid), time.monotonic()
    end_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    metrics1 = await asyncio.to_thread(scrape_all, http_ports)
    if churn is not None:
        await asyncio.to_thread(churn.wait)
    await asyncio.gather(*(leg.bye() for leg in legs), return_exceptions=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.sendto(STOP, ("127.0.0.1", media_port))
    ports_raw, stamps_raw = parent.recv()
    proc.join(10)
    for ua, transport in zip(uas, transports, strict=True):
        await ua.close()
        await transport.close()
    deviation, per_stream, received = analyse(ports_raw, stamps_raw, start_ns, end_ns)
    if deviation.size == 0:
        deviation = per_stream = np.array([float("nan")])
    return Figures(
        tree=tree, calls=count, answered=len(legs), expected=int(len(legs) * seconds * 50), received=received,
        p50_ms=float(np.percentile(deviation, 50)), p99_ms=float(np.percentile(deviation, 99)),
        max_ms=float(deviation.max()), worst_stream_p99_ms=float(per_stream.max()),
        engine_cpu_pct=100.0 * (cpu1 - cpu0) / (wall1 - wall0),
        engine=engine_figures(metrics_start, metrics0, metrics1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_calls")
    parser.add_argument("--calls", default="100,300", help="concurrent calls per round, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per round")
    parser.add_argument("--no-realtime", action="store_true", help="leave the engine at normal priority")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="`ivr serve --workers N` (default: as `ivr serve`, one per CPU; callers from 16 sockets)")
    parser.add_argument("--churn", type=float, default=0.0, metavar="CPS",
                        help="also place short SIPp calls at CPS during the window (signalling load)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="an engine config key for `ivr serve --set` (repeatable), e.g. gc_tuned=false")
    parser.add_argument("--base-root", type=pathlib.Path, default=None,
                        help="also run every round against the engine of another checkout (e.g. `git archive` of "
                             "the commit before), in the same window")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    import uvloop

    counts = [int(n) for n in args.calls.split(",") if n.strip()]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results: list[Figures] = []
    trees = [("this tree", ROOT)] + ([("base", args.base_root)] if args.base_root else [])
    priority = ""
    for tree, root in trees:
        with tempfile.TemporaryDirectory(prefix="media_calls_") as tmp:
            engine, sip_port, http_port, priority = start_node(pathlib.Path(tmp), not args.no_realtime,
                                                                max(counts) + 100, args.workers, args.settings, root)
            http_ports = [http_port + index for index in range(args.workers)]
            try:
                for count in counts:
                    results.append(uvloop.run(run(tree, count, args.seconds, engine.pid, sip_port, http_ports,
                                                  args.churn, pathlib.Path(tmp))))
                    print(f"   {tree}: {count} calls done", file=sys.stderr, flush=True)
                    time.sleep(2.0)  # let the engine finish the BYEs and records before the next round
            finally:
                engine.terminate()
                try:
                    engine.wait(30)
                except subprocess.TimeoutExpired:
                    engine.kill()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.media_calls --calls {args.calls} --seconds {args.seconds:g}" + (
        " --no-realtime" if args.no_realtime else "") + "".join(f" --set {s}" for s in args.settings) + (
        f" --churn {args.churn:g}" if args.churn else "") + f" --workers {args.workers}"
    command += f" --base-root {args.base_root}" if args.base_root else ""
    print("## Media through the engine: concurrent real calls (media_calls)\n")
    print(f"Command: `{command}` · machine: {platform.machine()}, nproc {os.cpu_count()} · date: {now} · "
          f"engine priority: {priority} · load average before: {load}\n")
    print("`ivr serve` repeats a menu prompt to N calls placed by our SIP UA (50 calls/s); every call's RTP "
          "goes to one receiver process that timestamps arrivals in the kernel (SO_TIMESTAMPNS). Deviation = "
          f"|inter-packet gap − 20 ms| over all gaps of all streams in a {args.seconds:g} s window after "
          f"{WARMUP_S:g} s warm-up; loss = packets missing from 50/s per answered call. Engine CPU: 100% = one "
          "core. Loop lag (the engine's `ivr_event_loop_lag_seconds`, a 50 ms timer): wake-ups later than 20 / 40 ms "
          "in the window, and the histogram bound above every one; GC (`ivr_gc_pause_seconds`) over the whole round "
          "from the first call placed: full collections, their total pause, and per generation the bound above "
          "every pause." + (f" During the window SIPp also places short calls at {args.churn:g}/s (`uac_basic.xml`: "
                           "INVITE, ACK, 200 ms, BYE) against the same engine." if args.churn else "") + "\n")
    print("| tree | calls | answered | packets expected | received | loss % | p50 dev (ms) | p99 dev (ms) "
          "| max dev (ms) | worst stream p99 (ms) | engine CPU | lag >20/>40 ms | lag ≤ (ms) | full GCs (ms) "
          "| GC pause ≤ ms, gen 0 / 1 / 2 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in results:
        e = f.engine
        loss = 100.0 * max(0, f.expected - f.received) / f.expected if f.expected else float("nan")
        print(f"| {f.tree} | {f.calls} | {f.answered} | {f.expected:,} | {f.received:,} | {loss:.2f} | {f.p50_ms:.3f} "
              f"| {f.p99_ms:.3f} | {f.max_ms:.2f} | {f.worst_stream_p99_ms:.3f} | {f.engine_cpu_pct:.0f}% "
              f"| {e['lag_over_20ms']:.0f}/{e['lag_over_40ms']:.0f} | {e['lag_ceiling_ms']:g} "
              f"| {e['gc2']:.0f} ({e['gc2_ms']:.0f}) | {e['gc0_ceiling_ms']:g} / {e['gc1_ceiling_ms']:g} "
              f"/ {e['gc2_ceiling_ms']:g} |")
    print()
    return 0 if results and all(f.answered == f.calls for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
