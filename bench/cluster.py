"""The cluster (docs/CLUSTER.md) on this machine's loopback: Kamailio (deploy/kamailio/cluster.cfg) in front of
1, 2 and 3 `ivr serve` nodes sharing PostgreSQL and Redis, all in the same run.

* calls/s: SIPp callers with media (the engine's prompt, echoed back by SIPp's -rtp_echo) through Kamailio,
  a short call each (BYE `--hold` s after the answer), at each offered rate of `--rates` for `--seconds`;
  failed calls, the rate SIPp achieved, call setup (INVITE sent -> 200 received) p50/p99;
* the proxy hop: one node, the same load sent straight to the node and through Kamailio: setup ratio;
* node loss: 3 nodes under load, one SIGKILLed: detection (kill -> Kamailio's `engine down` line), calls
  lost, worst setup of the calls that started after the kill (the INVITEs Kamailio had to retry on a live
  node), and recovery (the killed node restarted: ready -> Kamailio's `engine up` line);
* the ACD's shared log: its Redis stream's length after `--stream-events` ACD commands (callers joining
  and leaving a queue, from two nodes), bounded by snapshots and trimming, and how long a node starting
  then takes to reach the same state (the latest snapshot plus the stream after it).

The two cores are shared by SIPp, Kamailio, every node, PostgreSQL and Redis, so a node count's rate is
what the machine carries with that many nodes on it, not what as many machines would: the figures show
the cost and the failover, not the scaling of separate machines.

    .venv/bin/python -m bench.cluster [--rates 10,20,40] [--seconds 10] [--hold 1] [--stream-events 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import pathlib
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.acd import Acd, RedisBackend, load_config
from ivr.call import QueueRequest
from ivr.clock import LoopClock
from ivr.testing import peers
from ivr.testing.redis_server import RedisServer
from tests.integration.cluster.cluster import (
    CallerRun,
    Cluster,
    new_database,
    running_cluster,
    running_postgres,
    start_callers,
    start_node,
    wait_ready,
    write_flows,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclass(slots=True, frozen=True)
class Step:
    setup: str
    rate: float
    calls: int
    failed: int
    achieved_cps: float
    p50_ms: float
    p99_ms: float


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _achieved(run: CallerRun) -> float:
    found = re.findall(r"Call Rate\s*\|\s*[\d.]+ cps\s*\|\s*([\d.]+) cps", run.output())
    return float(found[-1]) if found else 0.0


def _load(setup: str, folder: pathlib.Path, target: str, rate: float, seconds: float, hold_s: float) -> Step:
    calls = max(1, int(rate * seconds))
    run = start_callers(folder, target, rate=rate, calls=calls, hold_s=hold_s)
    run.wait(seconds + hold_s + 120)
    setup_ms = run.setup_ms()
    return Step(setup, rate, calls, calls - len(run.succeeded()), _achieved(run),
                _percentile(setup_ms, 0.5), _percentile(setup_ms, 0.99))


def _proxy_times(cluster: Cluster, word: str) -> list[tuple[str, float]]:
    """(engine URI, unix time) of each `engine <word>: <uri> at <time>` line in Kamailio's log."""
    return [(m.group(1), float(m.group(2)))
            for m in re.finditer(rf"engine {word}: (sip:\S+) at ([\d.]+)", cluster.proxy.output())]


@dataclass(slots=True, frozen=True)
class Loss:
    rate: float
    calls: int
    lost: int
    detection_s: float
    retried_worst_ms: float
    recovery_s: float


def _node_loss(cluster: Cluster, folder: pathlib.Path, rate: float, hold_s: float) -> Loss:
    seconds = 20.0
    calls = int(rate * seconds)
    run = start_callers(folder, f"127.0.0.1:{cluster.proxy.port}", rate=rate, calls=calls, hold_s=hold_s)
    time.sleep(seconds / 2)  # the load runs on its own; the kill lands mid-run
    victim = cluster.node("node-2")
    uri = f"sip:{victim.host}:{victim.sip_port}"
    killed_at = time.time()
    victim.kill()
    run.wait(seconds + hold_s + 120)
    down = [t for u, t in _proxy_times(cluster, "down") if u == uri and t >= killed_at]
    # Calls that started after the kill: INVITE sent = the 200's arrival minus the setup time.
    worst = 0.0
    for rtt in folder.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            at_ms, setup_ms, *_ = (float(x) for x in line.split(";"))
            if run.started_wall + (at_ms - setup_ms) / 1000 >= killed_at:
                worst = max(worst, setup_ms)
    # Recovery: the node restarted under the same name; ready -> the proxy's probe takes it back.
    index = cluster.nodes.index(victim)
    back = start_node(index + 1, cluster.workdir, db=cluster.db, redis_url=cluster.redis_url, token=cluster.token,
                      flows_dir=cluster.workdir.parent / "flows", ports=(victim.sip_port, victim.http_port))
    wait_ready([back])
    ready_at = time.time()
    cluster.nodes[index] = back
    recovery = float("nan")
    uri_back = f"sip:{back.host}:{back.sip_port}"
    give_up = time.monotonic() + 15
    while time.monotonic() < give_up:
        ups = [t for u, t in _proxy_times(cluster, "up") if u == uri_back and t >= killed_at]
        if ups:
            recovery = max(0.0, ups[0] - ready_at)
            break
        time.sleep(0.1)  # the proxy's log is the only signal
    return Loss(rate, calls, calls - len(run.succeeded()), (down[0] - killed_at) if down else float("nan"),
                worst, recovery)


@dataclass(slots=True, frozen=True)
class StreamBound:
    events: int
    length: int
    snapshot_every: int
    join_s: float
    """A node started after the events: start -> the same state as the others."""


async def _stream_bound(redis_url: str, events: int, snapshot_every: int = 1000) -> StreamBound:
    """`events` ACD commands from two nodes (callers joining the demo's `general` queue, half of them
    leaving again, while its one agent is paused), then a third node joins."""
    config = load_config(ROOT / "config/agents.yaml", ROOT / "config/queues.yaml")

    def acd(name: str) -> Acd:
        return Acd(config, RedisBackend(redis_url, node_id=name, key="bench"), LoopClock(),
                   snapshot_every=snapshot_every)

    async with acd("A") as a, acd("B") as b:
        agent = next(iter(config.agents))
        await a.controls.login(agent, "sip:agent@192.0.2.1")
        await a.controls.pause(agent, "bench")
        sent, batch = 2, 0
        while sent < events:
            callers = [f"c{batch}-{n}" for n in range(100)]
            await asyncio.gather(*(a.enqueue(QueueRequest("general", priority=n % 3), c)
                                   for n, c in enumerate(callers)))
            await asyncio.gather(*(b.abandon(c) for c in callers[::2]))
            sent, batch = sent + 150, batch + 1
        backend = a.backend
        assert isinstance(backend, RedisBackend)
        await b.settled()
        length = await backend.stream_length()
        started = time.perf_counter()
        async with acd("C") as c:
            await c.settled()
            join_s = time.perf_counter() - started
            if c.core.snapshot() != a.core.snapshot():
                raise AssertionError("the late node's state differs from the others'")
    return StreamBound(sent, length, snapshot_every, join_s)


def stream_bound(events: int) -> StreamBound:
    with contextlib.closing(RedisServer(appendonly=True)) as redis:
        redis.start()
        return asyncio.run(_stream_bound(redis.url, events))


def report(steps: Sequence[Step], loss: Loss | None, command: str, hold_s: float, seconds: float,
           load_before: str, stream: StreamBound | None = None) -> str:
    lines = [
        "## Cluster: Kamailio + 1, 2, 3 engine nodes (cluster)",
        "",
        f"- command: `{command}`",
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs (shared by SIPp, Kamailio, every node, "
        f"PostgreSQL, Redis), Python {platform.python_version()}; load average before: {load_before}",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- load: SIPp `tests/integration/cluster/scenarios/uac_hold.xml` on loopback, {seconds:g} s per rate, each "
        f"call answered by a prompt (RTP both ways: SIPp echoes it), BYE {hold_s:g} s after the 200; setup = "
        "INVITE sent to 200 received (SIPp -trace_rtt, ms granularity)",
        "",
        "| setup | offered cps | calls | failed | achieved cps | setup p50 ms | setup p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {s.setup} | {s.rate:g} | {s.calls} | {s.failed} | {s.achieved_cps:.1f} | {s.p50_ms:.0f} "
              f"| {s.p99_ms:.0f} |" for s in steps]
    lines.append("")
    for name in dict.fromkeys(s.setup for s in steps):
        clean = [s for s in steps if s.setup == name and s.failed == 0]
        best = max(clean, key=lambda s: s.rate, default=None)
        lines.append(f"- **{name}**: " + (f"highest offered rate with zero failed calls {best.rate:g} calls/s "
                                          f"(setup p99 {best.p99_ms:.0f} ms)" if best else "no rate without failures"))
    direct = {s.rate: s for s in steps if s.setup == "1 node direct"}
    proxied = {s.rate: s for s in steps if s.setup == "1 node via kamailio"}
    for rate in sorted(set(direct) & set(proxied)):
        d, p = direct[rate], proxied[rate]
        if d.p50_ms > 0 and d.p99_ms > 0:
            lines.append(f"- proxy hop at {rate:g} cps: setup p50 {p.p50_ms:.0f} / {d.p50_ms:.0f} ms = "
                         f"**{p.p50_ms / d.p50_ms:.2f}x**, p99 {p.p99_ms:.0f} / {d.p99_ms:.0f} ms = "
                         f"**{p.p99_ms / d.p99_ms:.2f}x** (via Kamailio / direct)")
    if loss is not None:
        lines += [
            "",
            f"- node loss (3 nodes, {loss.rate:g} cps for 20 s, node-2 SIGKILLed at 10 s): {loss.calls} calls, "
            f"**{loss.lost} lost** (tests/integration/cluster/test_node_loss.py checks these are exactly the calls "
            "node-2 held at the kill); detection (kill -> Kamailio `engine down`) "
            f"**{loss.detection_s:.2f} s**; worst setup of a call started after the kill "
            f"{loss.retried_worst_ms:.0f} ms "
            "(an INVITE sent to the dead node is retried on a live one after fr_timer 2 s); recovery (node restarted: "
            f"ready -> Kamailio `engine up`) **{loss.recovery_s:.2f} s**",
        ]
    if stream is not None:
        lines += [
            "",
            f"- ACD stream (Redis, append-only): **{stream.length} entries after {stream.events:,} ACD events** "
            f"(snapshot every {stream.snapshot_every} entries, the stream trimmed behind the previous one); a node "
            f"started then reached the others' state (latest snapshot + the stream after it) in "
            f"**{stream.join_s * 1000:.0f} ms**",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rates", default="10,20,40", help="comma-separated offered calls/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of calls per rate")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds from answer to the caller's BYE")
    parser.add_argument("--nodes", default="1,2,3", help="node counts to measure")
    parser.add_argument("--loss-rate", type=float, default=10.0, help="calls/s during the node-loss run (0: skip)")
    parser.add_argument("--stream-events", type=int, default=10_000, help="ACD commands for the stream bound (0: skip)")
    args = parser.parse_args(argv)
    command = "python -m bench.cluster " + " ".join(argv if argv is not None else sys.argv[1:])
    missing = [p.reason for p in (peers.SIPP, peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER) if p.missing]
    if missing:
        print("## Cluster (cluster)\n\nskipped: " + "; ".join(missing))
        return 1
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    load_before = " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    steps: list[Step] = []
    loss: Loss | None = None
    stream = stream_bound(args.stream_events) if args.stream_events > 0 else None
    with tempfile.TemporaryDirectory(prefix="ivr-bench-cluster-") as tmp, running_postgres() as dsn:
        work = pathlib.Path(tmp)
        flows = write_flows(work)
        for count in (int(n) for n in args.nodes.split(",") if n.strip()):
            redis = RedisServer(appendonly=True)
            redis.start()
            folder = work / f"n{count}"
            folder.mkdir()
            try:
                with running_cluster(folder, db=new_database(dsn, f"bench_{count}"), redis_url=redis.url,
                                     flows_dir=flows, nodes=count) as cluster:
                    # Warm-up (not recorded): the first calls of a node pay for lazy imports and connections.
                    _load("warm-up", folder / "warm-up", f"127.0.0.1:{cluster.proxy.port}", 5, 2, args.hold)
                    for rate in rates:
                        if count == 1:
                            node = cluster.nodes[0]
                            steps.append(_load("1 node direct", folder / f"direct-{rate:g}",
                                               f"{node.host}:{node.sip_port}", rate, args.seconds, args.hold))
                        steps.append(_load(f"{count} node{'s' if count > 1 else ''} via kamailio",
                                           folder / f"proxy-{rate:g}", f"127.0.0.1:{cluster.proxy.port}", rate,
                                           args.seconds, args.hold))
                    if count == 3 and args.loss_rate > 0:
                        loss = _node_loss(cluster, folder / "loss", args.loss_rate, args.hold)
            finally:
                redis.close()
    print(report(steps, loss, command, args.hold, args.seconds, load_before, stream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
