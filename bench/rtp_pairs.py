"""RTP through media sessions both ways: CPU per packet of the media path alone, engine side and caller side.

Two processes (uvloop), as `ivr serve` and `ivr load` are: each opens N `MediaSession`s on loopback, the sessions
are paired across the processes and started at each other, so every pair sends a packet every 20 ms each way
(comfort silence; nothing listens unless `--listen`, which gives side A's sessions an audio consumer that does
nothing, as the engine's ears receive decoded frames). No SIP, no flow, no decoders: the figure is what one
packet costs to send and to receive (uvloop, the kernel and our per-packet Python), in CPU microseconds per packet
pair (one sent, one received) on each side, over `--seconds` after a 2 s warm-up. `--base-root DIR` runs each
round again with the media code of another checkout (a `git archive` of the commit before), alternating which
tree goes first; the medians of the rounds are reported (the machine is shared: single rounds vary by ~10%).

    .venv/bin/python -m bench.rtp_pairs [--pairs 300] [--seconds 6] [--rounds 5] [--listen] [--base-root DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def side(root: str, pairs: int, seconds: float, first_port: int, listen: bool) -> None:
    """One side (run as a subprocess with the media code of `root`): ports out on stdout, the peer's in on stdin."""
    sys.path.insert(0, root)
    import asyncio
    import logging
    import time

    import structlog
    import uvloop

    from ivr.clock import LoopClock
    from ivr.rtp import MediaEngine, MediaParams, MediaScheduler

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        clock = LoopClock(loop)
        engine = MediaEngine(host="127.0.0.1", port_first=first_port, port_last=first_port + 2 * pairs + 998,
                             scheduler=MediaScheduler(clock))
        sessions = [await engine.open_session() for _ in range(pairs)]
        print(json.dumps([s.local_port for s in sessions]), flush=True)
        peers = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        for session, port in zip(sessions, peers, strict=True):
            session.start(MediaParams(remote=("127.0.0.1", port)))
            if listen:
                session.add_audio_consumer(lambda frame: None)
        await asyncio.sleep(2.0)
        cpu, received = time.process_time(), sum(s.inbound.stats.received for s in sessions if s.inbound)
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu
        received = sum(s.inbound.stats.received for s in sessions if s.inbound) - received
        print(json.dumps({"us_per_pair": 1e6 * cpu / max(1, received), "packets": received}), flush=True)
        await asyncio.sleep(0.5)  # the peer measures until it, too, is done
        engine.close()

    uvloop.run(run())


def one_round(root: pathlib.Path, pairs: int, seconds: float, listen: bool) -> tuple[float, float]:
    """(engine side, caller side) CPU microseconds per packet pair."""
    def start(first_port: int, listening: bool) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, "--side", str(root), "--pairs", str(pairs), "--seconds", str(seconds),
             "--first-port", str(first_port)] + (["--listen"] if listening else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    a, b = start(30000, listen), start(40000, False)
    assert a.stdin and a.stdout and b.stdin and b.stdout
    ports_a, ports_b = a.stdout.readline(), b.stdout.readline()
    a.stdin.write(ports_b)
    a.stdin.flush()
    b.stdin.write(ports_a)
    b.stdin.flush()
    result_a, result_b = json.loads(a.stdout.readline()), json.loads(b.stdout.readline())
    a.wait(30)
    b.wait(30)
    return float(result_a["us_per_pair"]), float(result_b["us_per_pair"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--listen", action="store_true", help="side A's sessions have an audio consumer")
    parser.add_argument("--base-root", type=pathlib.Path, default=None)
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--first-port", type=int, default=30000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        side(args.side, args.pairs, args.seconds, args.first_port, args.listen)
        return
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    trees = [("this tree", ROOT)] + ([("base", args.base_root.resolve())] if args.base_root else [])
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in trees}
    for index in range(args.rounds):
        for name, root in trees if index % 2 == 0 else trees[::-1]:
            figures[name].append(one_round(root, args.pairs, args.seconds, args.listen))
            print(f"rtp_pairs: round {index + 1} {name}: {figures[name][-1][0]:.2f} / {figures[name][-1][1]:.2f} us",
                  file=sys.stderr, flush=True)
    base = f" --base-root {args.base_root}" if args.base_root else ""
    listen = " --listen" if args.listen else ""
    print(f"Command: `python -m bench.rtp_pairs --pairs {args.pairs} --seconds {args.seconds:g} --rounds {args.rounds}"
          f"{listen}{base}` · machine: {platform.machine()}, nproc {os.cpu_count()} · {started} · load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| tree | CPU us per packet pair, engine side (median; rounds) | caller side (median; rounds) |")
    print("|---|---|---|")
    for name, rows in figures.items():
        a, b = [r[0] for r in rows], [r[1] for r in rows]
        print(f"| {name} | {statistics.median(a):.1f} ({', '.join(f'{x:.1f}' for x in a)}) "
              f"| {statistics.median(b):.1f} ({', '.join(f'{x:.1f}' for x in b)}) |")


if __name__ == "__main__":
    main()
