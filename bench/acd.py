"""ACD benchmark: distribution time with 1,000 waiting callers and 200 agents, both backends.

Two measures, each over the real async facade (command appended to the log, applied by the node's
single writer, offer delivered to the caller's ticket):

- agent free -> next caller offered: all 200 agents on calls, 1,000 callers waiting; an agent's
  call ends (wrap-up 0) and the head caller's ticket gets the offer.
- caller enqueued -> offered: 1,000 callers wait in a queue no free agent can serve (claims at
  level 5), while idle agents wait in `general`; a new `general` caller is enqueued and offered.

The Redis backend runs against a redis-server this script starts on a free loopback port.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import structlog

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.acd import Acd, AcdBackend, MemoryBackend, RedisBackend, parse_config  # noqa: E402
from ivr.acd.config import AcdConfig  # noqa: E402
from ivr.call import QueueRequest  # noqa: E402
from ivr.clock import LoopClock  # noqa: E402
from ivr.testing.redis_server import local_redis_server, redis_server_path  # noqa: E402

AGENTS = 200
WAITING = 1000
SAMPLES = 1000
SITES = ("beijing", "shanghai", "guangzhou")


def bench_config() -> AcdConfig:
    sites = "sites:\n" + "".join(f"  - {{id: {s}, region: r{i}}}\n" for i, s in enumerate(SITES))
    agents = "agents:\n" + "".join(
        f"  - {{id: b{i:03d}, sip: {{username: b{i:03d}, password: pw}}, site: {SITES[i % 3]},"
        f" skills: {{general: 2, claims: {1 + i % 4}}}, dialects: [cmn], wrap_up_s: 0}}\n"
        for i in range(AGENTS)
    )
    queues = (
        "queues:\n"
        "  - {id: general, skill: general, strategy: longest-idle, ring_timeout_s: 3600, widen_after_s: 99999}\n"
        "  - {id: claims, skill: claims, strategy: skills-based, ring_timeout_s: 3600, widen_after_s: 99999}\n"
    )
    return parse_config(sites + agents, queues)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(samples: list[float], action: Callable[[], Awaitable[None]]) -> None:
    start = time.perf_counter()
    await action()
    samples.append((time.perf_counter() - start) * 1000)


async def agent_free_to_offer(backend: AcdBackend) -> list[float]:
    """All agents busy, WAITING callers queued; end a call, time until the next offer."""
    samples: list[float] = []
    async with Acd(bench_config(), backend, LoopClock()) as acd:
        for i in range(AGENTS):
            await acd.controls.login(f"b{i:03d}", f"sip:b{i:03d}@10.0.0.{i % 250}")
        tickets = {}
        for n in range(AGENTS + WAITING):
            tickets[f"c{n}"] = await acd.enqueue(QueueRequest("general"), f"c{n}")
        for n in range(AGENTS):  # the first AGENTS callers ring an agent each: answer them all
            offers = await tickets.pop(f"c{n}").wait_for_offer()
            assert isinstance(offers, tuple)
            await acd.ring_answered(offers[0])
        served = AGENTS
        for k in range(SAMPLES):
            agent_id = f"b{k % AGENTS:03d}"
            ticket = tickets.pop(f"c{served}")
            offer_box: list[object] = []

            async def free_and_offer(agent_id: str = agent_id, ticket=ticket, box=offer_box) -> None:  # type: ignore[no-untyped-def]
                await acd.call_ended(agent_id)
                box.append(await ticket.wait_for_offer())

            await _timed(samples, free_and_offer)
            offers = offer_box[0]
            assert isinstance(offers, tuple) and offers[0].agent_id == agent_id, offers
            await acd.ring_answered(offers[0])
            served += 1
            n = AGENTS + WAITING + k
            tickets[f"c{n}"] = await acd.enqueue(QueueRequest("general"), f"c{n}")  # keep 1,000 waiting
    return samples


async def enqueue_to_offer(backend: AcdBackend) -> list[float]:
    """WAITING callers nobody can serve; time a new caller's enqueue until its offer."""
    samples: list[float] = []
    async with Acd(bench_config(), backend, LoopClock()) as acd:
        for i in range(AGENTS):
            await acd.controls.login(f"b{i:03d}", f"sip:b{i:03d}@10.0.0.{i % 250}")
        for n in range(WAITING):
            await acd.enqueue(QueueRequest("claims", skills={"claims": 5}), f"w{n}")
        for k in range(SAMPLES):
            box: list[object] = []

            async def enqueue_and_offer(k: int = k, box: list[object] = box) -> None:
                ticket = await acd.enqueue(QueueRequest("general"), f"g{k}")
                box.append(await ticket.wait_for_offer())

            await _timed(samples, enqueue_and_offer)
            offers = box[0]
            assert isinstance(offers, tuple)
            await acd.ring_answered(offers[0])
            await acd.call_ended(offers[0].agent_id)
        assert acd.queue_stats("claims").waiting == WAITING
    return samples


async def run_all() -> list[tuple[str, str, list[float]]]:
    rows: list[tuple[str, str, list[float]]] = []
    for name, measure in (("agent free → offer", agent_free_to_offer), ("enqueue → offer", enqueue_to_offer)):
        rows.append(("memory", name, await measure(MemoryBackend("bench"))))
    if redis_server_path() is not None:
        for name, measure in (("agent free → offer", agent_free_to_offer), ("enqueue → offer", enqueue_to_offer)):
            with local_redis_server() as url:
                rows.append(("redis", name, await measure(RedisBackend(url, node_id="bench"))))
    return rows


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = asyncio.run(run_all())
    print("## ACD distribution time\n")
    print(f"Command: `python -m bench.acd` · machine: {platform.machine()}, {os.cpu_count()} cores · {started}\n")
    print(f"{WAITING:,} callers waiting, {AGENTS} agents, {SAMPLES} samples per row, uvloop; time from the")
    print("command (call ended / enqueue) to the offer on the caller's ticket, through the node's log.\n")
    print("| backend | measure | p50 ms | p99 ms | max ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for backend, name, samples in rows:
        print(
            f"| {backend} | {name} | {statistics.median(samples):.3f} | {percentile(samples, 0.99):.3f} "
            f"| {max(samples):.3f} |"
        )
    if redis_server_path() is None:
        print("\nredis-server not installed (apt install redis-server): Redis rows skipped.")


if __name__ == "__main__":
    main()
