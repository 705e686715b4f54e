"""PostgreSQL that stops answering (not refusing: a host gone silent) under the remembered-dialect memory
(issue 22): the event loop is not held, calls are answered and served, writes made meanwhile land once
the database answers again.

The database sits behind a `FreezableRelay` on loopback: frozen, it accepts connections and relays no
byte, so a query waits forever and a connect waits for its timeout. Before issue 22 the lookup at a
call's answer ran on the loop and the engine stopped dead (no call answered, no media) for as long.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import urllib.request
from collections.abc import Iterator

import pytest

from ivr.store import open_store
from ivr.store.dialects import open_dialect_worker
from ivr.testing.caller import TestCaller
from ivr.testing.postgres_server import PostgresServer
from tests.integration.engine.conftest import RunningEngine, stop_engine
from tests.integration.protocol.conftest import engine_for_protocols
from tests.integration.store import test_postgres_restart as restart
from tests.integration.store.relay import FreezableRelay, freezable_relay
from tests.integration.store.test_postgres_restart import place, rows, stored

pytestmark = pytest.mark.integration

postgres, caller = restart.postgres, restart.caller  # its fixtures: a PostgreSQL of our own, a test caller

STALL_S = 1.0
"""A loop lag past this (the lag histogram's last finite bucket) is a stall: the connect timeout is 10 s and
a query to a silent host waits forever, so a lookup on the loop would show as one far past it."""


@pytest.fixture
def relay(postgres: PostgresServer) -> Iterator[FreezableRelay]:
    with freezable_relay(("127.0.0.1", postgres.port)) as running:
        yield running


async def test_a_silent_database_holds_neither_the_loop_nor_a_lookup_and_a_write_waits_for_it(
    postgres: PostgresServer, relay: FreezableRelay
) -> None:
    direct = postgres.database("ivr_dialect_worker")
    open_store(direct).close()  # the migrations create caller_dialects
    worker = await asyncio.to_thread(open_dialect_worker, relay.dsn(direct))
    try:
        worker.set("13700000941", "yue")
        assert await worker.lookup("13700000941") == "yue"
        relay.freeze()
        turns = 0

        async def spinning() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        spinner = asyncio.create_task(spinning())
        async with asyncio.timeout(5):  # a lookup on the loop would hold it forever: this could not fire
            assert await worker.lookup("13700000941") is None  # "nothing remembered", within the budget
        spinner.cancel()
        assert turns > 0 and worker.late_lookups == 1  # the loop ran while the query waited for the host
        worker.set("13700000942", "en")  # returns at once; waits for the database in the queue
        relay.thaw()
    finally:
        await asyncio.to_thread(worker.close)
    found = rows(direct, "SELECT caller, dialect FROM caller_dialects ORDER BY caller")
    assert found == [("13700000941", "yue"), ("13700000942", "en")]
    assert worker.dropped_writes == 0


def lag_buckets(engine: RunningEngine) -> dict[str, float]:
    """`ivr_event_loop_lag_seconds_bucket` counts from the engine's /metrics, by `le`."""
    request = urllib.request.Request(engine.api + "/metrics", headers=engine.headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    found = re.finditer(r'^ivr_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', text, re.MULTILINE)
    return {m.group(1): float(m.group(2)) for m in found}


def stalls(buckets: dict[str, float]) -> float:
    """Lag samples past `STALL_S` (the last finite bucket)."""
    last = max((le for le in buckets if le != "+Inf"), key=float)
    assert float(last) == STALL_S, buckets
    return buckets["+Inf"] - buckets[last]


def put_dialect(engine: RunningEngine, number: str, dialect: str) -> None:
    body = json.dumps({"dialect": dialect}).encode()
    request = urllib.request.Request(f"{engine.api}/api/callers/{number}/dialect", data=body, method="PUT",
                                     headers={**engine.headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status < 300


async def test_a_call_while_postgresql_is_silent_is_served_without_a_stall_of_the_loop(
    postgres: PostgresServer, relay: FreezableRelay, caller: TestCaller, tmp_path: pathlib.Path
) -> None:
    direct = postgres.database("ivr_silent")
    engine = await asyncio.to_thread(engine_for_protocols, tmp_path, [], arguments=["--db", relay.dsn(direct)])
    try:
        await asyncio.to_thread(put_dialect, engine, "13700000951", "en")
        await place(caller, engine, "13700000951", "11")
        await stored(direct, "13700000951", in_progress=False, timeout_s=15)
        before = await asyncio.to_thread(lag_buckets, engine)
        relay.freeze()
        await asyncio.to_thread(put_dialect, engine, "13700000952", "en")  # answered; the write waits
        await place(caller, engine, "13700000953", "33")  # answered and served: keys taken, hung up
        after = await asyncio.to_thread(lag_buckets, engine)
        relay.thaw()
        await place(caller, engine, "13700000952", "22")
        await stored(direct, "13700000952", in_progress=False, timeout_s=30)
        await stored(direct, "13700000953", in_progress=False, timeout_s=30)
    finally:
        relay.thaw()
        await asyncio.to_thread(stop_engine, engine)
    assert after["+Inf"] > before["+Inf"], (before, after)  # the monitor ran while the database was silent
    assert stalls(after) == stalls(before), (before, after)
    variables = {number: rows(direct, "SELECT variables FROM calls WHERE caller = %s", number)[0][0]
                 for number in ("13700000951", "13700000952", "13700000953")}
    assert variables["13700000951"].get("remembered_dialect") == "en"
    assert variables["13700000952"].get("remembered_dialect") == "en"  # set while silent, written after
    assert "remembered_dialect" not in variables["13700000953"]  # asked while silent: nothing, in budget
    assert variables["13700000953"].get("entered") == "33"
