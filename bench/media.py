"""Media pacing benchmark: N concurrent scheduler-driven RTP streams, timed by a separate receiver process.

Sender (this process, uvloop): one `MediaEngine`, N `MediaSession`s, each playing the same prompt
(encoded once, shared) in a loop, all paced by the single 20 ms media clock. Receiver (a separate
process, spawned): one UDP socket on loopback with kernel receive timestamps (SO_TIMESTAMPNS), so
its own scheduling does not colour the figures; it keeps (source port, arrival) for every packet.
Per stream, each inter-packet gap's deviation from 20 ms is taken; the table gives p50/p99/max over
all gaps of all streams, packet loss, and the sender's CPU (process time / wall time, 100% = one core).
The sender asks for SCHED_RR priority, as media servers run (Asterisk -p, FreeSWITCH -rp), unless
--no-realtime; "max tick lateness" is read from the loop clock (1 ms resolution under uvloop).

Usage: python -m bench.media [--streams 100,300,500,1000] [--seconds 10] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import datetime
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import pathlib
import platform
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from ivr.media.g711 import PCMU  # noqa: E402
from ivr.media.tones import dtmf_sequence, music_on_hold, tone  # noqa: E402
from ivr.rtp import EncodedAudio, MediaEngine, MediaParams, MediaSession  # noqa: E402

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
STOP = b"STOP"
WARMUP_S = 1.0


# ---------------------------------------------------------------- receiver process


def receiver(conn: multiprocessing.connection.Connection) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 64 * 1024 * 1024)  # SO_RCVBUFFORCE (root) ...
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)  # ... or as much as allowed
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])
    ports = array.array("H")
    stamps = array.array("q")
    timespec = struct.Struct("@qq")
    recvmsg = sock.recvmsg
    space = socket.CMSG_SPACE(timespec.size)
    while True:
        data, ancillary, _, source = recvmsg(256, space)
        if data == STOP:
            break
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = timespec.unpack(value)
                ports.append(source[1])
                stamps.append(seconds * 1_000_000_000 + nanos)
    sock.close()
    conn.send((ports.tobytes(), stamps.tobytes()))


@dataclass
class Figures:
    streams: int
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    worst_stream_p99_ms: float
    cpu_percent: float
    max_tick_late_ms: float
    skipped_ticks: int


def analyse(
    ports_raw: bytes, stamps_raw: bytes, start_ns: int, end_ns: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """All gap deviations (ms), per-stream p99 (ms), and packets received in the window."""
    ports = np.frombuffer(ports_raw, dtype=np.uint16)
    stamps = np.frombuffer(stamps_raw, dtype=np.int64)
    keep = (stamps >= start_ns) & (stamps < end_ns)
    ports, stamps = ports[keep], stamps[keep]
    order = np.lexsort((stamps, ports))
    ports, stamps = ports[order], stamps[order]
    same = ports[1:] == ports[:-1]
    gaps_ms = np.diff(stamps)[same] / 1e6
    deviation = np.abs(gaps_ms - 20.0)
    stream_of_gap = ports[1:][same]
    per_stream = [np.percentile(deviation[stream_of_gap == p], 99) for p in np.unique(stream_of_gap)]
    return deviation, np.array(per_stream), int(stamps.size)


# ---------------------------------------------------------------- sender


async def run(streams: int, seconds: float, prompt: EncodedAudio) -> Figures:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=receiver, args=(child,), daemon=True)
    proc.start()
    port = parent.recv()
    engine = MediaEngine(port_first=20000, port_last=20000 + 2 * streams + 200)
    sessions: list[MediaSession] = []
    for n in range(streams):
        session = await engine.open_session(call_id=f"bench-{n}")
        session.start(MediaParams(remote=("127.0.0.1", port), payload_type=0))
        sessions.append(session)

    async def keep_playing(session: MediaSession) -> None:
        while True:
            await session.play(prompt)

    players = [asyncio.create_task(keep_playing(s)) for s in sessions]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(WARMUP_S)
    start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    engine.scheduler.max_lateness_s = 0.0
    clock = engine.scheduler.clock
    assert clock is not None
    skipped_before = clock.skipped
    sent_before = sum(s.outbound.packets_sent for s in sessions if s.outbound is not None)
    cpu0, wall0 = time.process_time(), loop.time()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), loop.time()
    end_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    sent = sum(s.outbound.packets_sent for s in sessions if s.outbound is not None) - sent_before
    skipped = clock.skipped - skipped_before
    late_ms = engine.scheduler.max_lateness_s * 1000
    for task in players:
        task.cancel()
    await asyncio.gather(*players, return_exceptions=True)
    engine.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.sendto(STOP, ("127.0.0.1", port))
    ports_raw, stamps_raw = parent.recv()
    proc.join(10)
    deviation, per_stream, received = analyse(ports_raw, stamps_raw, start_ns, end_ns)
    return Figures(
        streams=streams,
        sent=sent,
        received=received,
        p50_ms=float(np.percentile(deviation, 50)),
        p99_ms=float(np.percentile(deviation, 99)),
        max_ms=float(deviation.max()),
        worst_stream_p99_ms=float(per_stream.max()),
        cpu_percent=100.0 * (cpu1 - cpu0) / (wall1 - wall0),
        max_tick_late_ms=late_ms,
        skipped_ticks=skipped,
    )


def prompt_audio() -> EncodedAudio:
    """A 6 s prompt-like clip (tones, keys, music), encoded once and shared by every stream."""
    audio = np.concatenate([tone((440.0, 660.0), 1.0), dtmf_sequence("123"), music_on_hold()[: 8000 * 4]])
    return EncodedAudio(PCMU, PCMU.encode_frames(audio))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media")
    parser.add_argument("--streams", default="100,300,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument(
        "--no-realtime", action="store_true", help="do not ask for SCHED_RR priority for the sender process"
    )
    args = parser.parse_args(argv)
    priority = "normal"
    if not args.no_realtime:
        try:  # as media servers run (Asterisk -p, FreeSWITCH -rp): other load must not delay the media clock
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(20))
            priority = "SCHED_RR 20"
        except (OSError, AttributeError):
            priority = "normal (SCHED_RR refused)"
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = [int(n) for n in args.streams.split(",")]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    prompt = prompt_audio()
    runner: Callable[[Coroutine[Any, Any, Figures]], Figures] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    results = []
    for count in counts:
        results.append(runner(run(count, args.seconds, prompt)))
        print(f"   {count} streams done", file=sys.stderr, flush=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## Media: RTP pacing of concurrent streams from one media clock\n")
    command = f"python -m bench.media --streams {args.streams} --seconds {args.seconds:g} --loop {args.loop}"
    print(
        f"Command: `{command}` · machine: {platform.machine()}, nproc {os.cpu_count()} · date: {now}"
        f" · sender priority: {priority} · load average before: {load}\n"
    )
    print(
        "Each stream plays a pre-encoded prompt in a loop (PCMU, 20 ms); a separate receiver process "
        "timestamps arrivals in the kernel (SO_TIMESTAMPNS). Deviation = |inter-packet gap − 20 ms| over "
        f"all gaps of all streams in a {args.seconds:g} s window after {WARMUP_S:g} s warm-up. CPU is the "
        "sender process only (100% = one core).\n"
    )
    print(
        "| streams | packets sent | received | p50 dev (ms) | p99 dev (ms) | max dev (ms) "
        "| worst stream p99 (ms) | sender CPU | max tick lateness (ms) | skipped ticks |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in results:
        print(
            f"| {f.streams} | {f.sent:,} | {f.received:,} | {f.p50_ms:.3f} | {f.p99_ms:.3f} | {f.max_ms:.2f} "
            f"| {f.worst_stream_p99_ms:.3f} | {f.cpu_percent:.0f}% | {f.max_tick_late_ms:.2f} "
            f"| {f.skipped_ticks} |"
        )
    print()


if __name__ == "__main__":
    main()
