"""Issue 18, the ACD's part, against a real redis-server: a bounded stream, and a Redis restart.

- The stream stays bounded: snapshots every `snapshot_every` entries trim it; after 10,000 ACD
  events its length is printed (run with -s to see it) and checked against the bound, and a node
  starting late begins from the snapshot and holds the same state as the others.
- redis-server is killed (SIGKILL) and restarted while callers wait on two nodes: with no
  persistence (the nodes reseed the empty Redis from a surviving copy of the state) and with an
  append-only file (the nodes read on). No caller is lost: each keeps its place and priority.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator

import pytest

from ivr.acd import Acd, RedisBackend, load_config
from ivr.acd.commands import LogEntry
from ivr.acd.config import AcdConfig
from ivr.call import QueueRequest
from ivr.clock import LoopClock
from ivr.testing import peers
from ivr.testing.redis_server import RedisServer, running_redis_server

pytestmark = pytest.mark.integration

SNAPSHOT_EVERY = 1000
EVENTS = 10_000
_keys = itertools.count()


@pytest.fixture
def demo_config(project_root) -> AcdConfig:  # type: ignore[no-untyped-def]
    return load_config(project_root / "config/agents.yaml", project_root / "config/queues.yaml")


@pytest.fixture(params=[False, True], ids=["no-persistence", "appendonly"])
def redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    if peers.REDIS_SERVER.missing:
        pytest.skip(peers.REDIS_SERVER.reason)
    with running_redis_server(appendonly=request.param) as server:
        yield server


def node(config: AcdConfig, url: str, name: str, key: str) -> Acd:
    return Acd(config, RedisBackend(url, node_id=name, key=key), LoopClock(), snapshot_every=SNAPSHOT_EVERY)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (real nodes over a real Redis: nothing to await on)
            await asyncio.sleep(0.02)
    assert condition(), what


async def same_position(a: Acd, b: Acd) -> None:
    """Wait until both nodes have applied the same stream entry: the nodes' heartbeats keep appending, so a
    node that has seen "last" may still be an entry behind another; compared at one position (no await
    between this and the caller's comparison), their states must be equal."""
    await until(lambda: a.replica.after == b.replica.after, 5.0, "both nodes applied the same entries")


async def test_stream_stays_bounded_over_ten_thousand_events(demo_config: AcdConfig, redis_url: str) -> None:
    key = f"bounded{next(_keys)}"
    async with node(demo_config, redis_url, "A", key) as a, node(demo_config, redis_url, "B", key) as b:
        await b.controls.login("a1001", "sip:a1001@10.1.0.1")
        await b.controls.pause("a1001", "meeting")  # callers wait: each enqueue and abandon is an entry
        sent = 3  # two heartbeats and the login... and the pause
        for batch in itertools.count():
            calls = [f"c{batch}-{n}" for n in range(50)]
            await asyncio.gather(*(a.enqueue(QueueRequest("general", priority=n % 3), c) for n, c in enumerate(calls)))
            await asyncio.gather(*(b.abandon(c) for c in calls[::2]))
            sent += 75
            if sent >= EVENTS:
                break
        await a.enqueue(QueueRequest("general"), "last")
        backend = a.backend
        assert isinstance(backend, RedisBackend)
        await until(lambda: b.core.position("last") is not None, 5.0, "node B applied the log")
        length = await backend.stream_length()
        print(f"\nACD stream length after {sent + 1} ACD events: {length} entries (snapshot every {SNAPSHOT_EVERY})")
        assert length <= 2 * SNAPSHOT_EVERY + 200, length
        async with node(demo_config, redis_url, "C", key) as c:  # a late node: snapshot + the stream after it
            await c.settled()
            await until(lambda: c.core.position("last") is not None, 5.0, "node C caught up")
            assert c.replica.resyncs == 0
            await same_position(a, c)
            waiting = [x.call_id for x in a.core.waiting_in_order()]
            assert waiting and [x.call_id for x in c.core.waiting_in_order()] == waiting
            assert c.core.snapshot() == a.core.snapshot()


async def test_callers_keep_their_place_when_redis_is_killed_and_restarted(
    demo_config: AcdConfig, redis: RedisServer
) -> None:
    key = f"restart{next(_keys)}"
    async with node(demo_config, redis.url, "A", key) as a, node(demo_config, redis.url, "B", key) as b:
        await b.controls.login("a1001", "sip:a1001@10.1.0.1")
        await b.controls.pause("a1001", "meeting")
        tickets = {}
        for n in range(12):
            acd = a if n % 2 else b
            call_id = f"c{n}"
            request = QueueRequest("general", priority=n % 4, context={"n": str(n)})
            tickets[call_id] = await acd.enqueue(request, call_id)
        await until(lambda: len(a.core.callers) == len(b.core.callers) == 12, 5.0, "both nodes see 12 callers")
        before = [(x.call_id, x.priority) for x in a.core.waiting_in_order()]
        assert [p for _c, p in before] == sorted((p for _c, p in before), reverse=True)

        redis.kill()
        await asyncio.sleep(0.5)  # both nodes notice: their reads fail, callers keep waiting
        assert all(t.result is None for t in tickets.values())
        redis.start()

        if not redis.appendonly:  # an empty Redis: the first node back reseeds it, the other follows
            await until(lambda: a.replica.resyncs >= 1 and b.replica.resyncs >= 1, 15.0, "both nodes started over")
        for acd in (a, b):
            await until(lambda acd=acd: len(acd.core.callers) == 12, 15.0, f"node {acd.node_id} has every caller")
        assert all(t.result is None for t in tickets.values()), "no caller was dropped"
        for acd in (a, b):
            assert [(x.call_id, x.priority) for x in acd.core.waiting_in_order()] == before
            assert acd.core.callers["c5"].request.context == {"n": "5"}

        # The queue goes on: the agent comes back and takes the head of the queue.
        await b.controls.resume("a1001")
        head = before[0][0]
        offers = await asyncio.wait_for(tickets[head].wait_for_offer(), 5.0)
        assert isinstance(offers, tuple) and offers[0].call_id == head
        await b.enqueue(QueueRequest("general"), "after-restart")  # and new callers are taken


class StalledRedisBackend(RedisBackend):
    """A node whose reads can be held back (a frozen VM, a long pause) while the others go on."""

    def __init__(self, url: str, *, node_id: str, key: str) -> None:
        super().__init__(url, node_id=node_id, key=key)
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self, after: str | None) -> list[LogEntry]:
        await self.gate.wait()
        return await super().read(after)


async def test_a_node_behind_the_trimmed_stream_starts_over_from_the_snapshot(
    demo_config: AcdConfig, redis_url: str
) -> None:
    key = f"behind{next(_keys)}"
    slow = StalledRedisBackend(redis_url, node_id="B", key=key)
    async with node(demo_config, redis_url, "A", key) as a, Acd(
        demo_config, slow, LoopClock(), snapshot_every=SNAPSHOT_EVERY
    ) as b:
        await a.controls.login("a1001", "sip:a1001@10.1.0.1")
        await a.controls.pause("a1001", "meeting")
        mine = await b.enqueue(QueueRequest("general", priority=7), "mine")
        slow.gate.clear()  # B stops reading (well within its lease) while A fills the stream
        for batch in range(40):
            calls = [f"c{batch}-{n}" for n in range(40)]
            await asyncio.gather(*(a.enqueue(QueueRequest("general"), c) for c in calls))
            await asyncio.gather(*(a.abandon(c) for c in calls))
        slow.gate.set()
        await a.enqueue(QueueRequest("general"), "last")
        await until(lambda: b.core.position("last") is not None, 10.0, "node B caught up")
        assert b.replica.resyncs == 1, "B started over from the snapshot instead of reading past the trim"
        await same_position(a, b)
        assert b.core.snapshot() == a.core.snapshot()
        assert mine.result is None and b.core.position("mine") == 1


async def test_a_burst_of_commands_from_one_node_is_applied_whole_and_in_order(
    demo_config: AcdConfig, redis_url: str
) -> None:
    """More commands in flight than the node's Redis connections (a burst of callers joining a queue):
    none fails with "Too many connections", and none is lost: they reach the stream in the order they were
    sent (the distributor drops a command numbered below the last one applied from its sender as a repeat,
    which silently lost 31 of 100 such callers when appends raced over several connections)."""
    from ivr.acd.redis_backend import WRITER_CONNECTIONS

    key = f"burst{next(_keys)}"
    async with node(demo_config, redis_url, "A", key) as a:
        await a.controls.login("a1001", "sip:a1001@10.1.0.1")
        await a.controls.pause("a1001", "meeting")
        calls = [f"c{n}" for n in range(20 * WRITER_CONNECTIONS)]
        await asyncio.gather(*(a.enqueue(QueueRequest("general"), c) for c in calls))
        assert [x.call_id for x in a.core.waiting_in_order()] == calls
