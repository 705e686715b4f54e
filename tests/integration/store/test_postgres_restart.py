"""PostgreSQL restarted under a running `ivr serve --db postgresql://...`: callers are still answered
while the database is down, and once it is back every record written meanwhile lands, nothing lost.

Real calls (SIP and RTP from the test caller, keys pressed) to a flow that collects keys: with the
database up; starting with it up and ending while it is down; wholly while it is down; after it is
back. Everything is read back with psycopg straight from the tables, not through the engine's own
store: each call's row is finished with the keys it pressed, and its journey has as many events as
the first call's (the same path through the same flow).
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ivr.testing import peers
from ivr.testing.caller import Keys, Pause, TestCaller
from ivr.testing.postgres_server import PostgresServer, running_postgres_server
from tests.integration.engine.conftest import RunningEngine, stop_engine
from tests.integration.protocol.conftest import KEYS_NUMBER, engine_for_protocols, uri

pytestmark = pytest.mark.integration

BACK_WITHIN_S = 60.0
"""The store retries a lost database with backoff up to 10 s a step: well inside this."""


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    if peers.POSTGRESQL.missing:
        pytest.skip(peers.POSTGRESQL.reason)
    with running_postgres_server() as server:
        yield server


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    test_caller = await TestCaller.open()
    try:
        yield test_caller
    finally:
        await test_caller.close()


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


async def stored(url: str, caller: str, *, in_progress: bool, timeout_s: float) -> tuple[Any, ...]:
    """The `calls` row of `caller`'s call once it is there with `in_progress` as asked."""
    seen: list[tuple[Any, ...]] = []
    async with asyncio.timeout(timeout_s):
        while True:
            seen = await asyncio.to_thread(
                rows, url, "SELECT call_id, in_progress, outcome, variables FROM calls WHERE caller = %s", caller)
            if seen and seen[0][1] is in_progress:
                return seen[0]
            await asyncio.sleep(0.2)  # another process's database: nothing to await but a query


async def all_stored(url: str, earlier: list[str], *, last: str) -> dict[str, tuple[Any, ...]]:
    """The finished rows of `earlier` callers and of `last`, once `last`'s has landed: the store's one
    writer commits in order, so by then everything queued before it is in (or lost for good)."""
    finished = {last: await stored(url, last, in_progress=False, timeout_s=BACK_WITHIN_S)}
    for number in earlier:
        found = await asyncio.to_thread(
            rows, url, "SELECT call_id, in_progress, outcome, variables FROM calls WHERE caller = %s", number)
        assert found and found[0][1] is False, f"{number}: record lost or left in progress: {found}"
        finished[number] = found[0]
    return finished


@contextlib.asynccontextmanager
async def engine_on(postgres: PostgresServer, tmp: pathlib.Path) -> AsyncIterator[RunningEngine]:
    """`ivr serve --db` a fresh database of `postgres`, with the protocol tests' keys flow; stopped
    healthy (the store's retries while the database is down are warnings with a traceback: expected)."""
    url = postgres.database("ivr_restart")
    engine = engine_for_protocols(tmp, [], arguments=["--db", url])
    try:
        yield engine
    finally:
        stop_engine(engine, errors_expected=[r'"event": "store_write_retry"'])


async def place(caller: TestCaller, engine: RunningEngine, number: str, keys: str, wait_s: float = 0.3) -> None:
    """A call from `number` that presses `keys` then # (the flow stores them as `entered` and hangs up)."""
    report = await caller.call(uri(engine, KEYS_NUMBER), [Pause(wait_s), Keys(keys + "#")], from_number=number,
                               linger_s=0.0, max_duration_s=30.0)
    assert report.answered, f"{number}: not answered ({report.status})"


def assert_nothing_lost(url: str, finished: dict[str, tuple[Any, ...]], reference: str) -> None:
    """Each call's row holds its keys (`number`'s last digit twice) and an outcome; its journey has as
    many events as `reference`'s (the same path through the same flow)."""
    for number, (_, _, outcome, variables) in finished.items():
        assert variables.get("entered") == number[-1] * 2, (number, variables)
        assert outcome, (number, outcome)
    journeys = {number: rows(url, "SELECT count(*) FROM journey_events WHERE call_id = %s", call_id)[0][0]
                for number, (call_id, *_) in finished.items()}
    assert journeys[reference] > 0
    assert set(journeys.values()) == {journeys[reference]}, f"journey events lost: {journeys}"


async def test_records_of_a_call_that_ends_while_postgresql_restarts_land_when_it_is_back(
    postgres: PostgresServer, caller: TestCaller, tmp_path: pathlib.Path
) -> None:
    async with engine_on(postgres, tmp_path) as engine:
        url = postgres.dsn.rsplit("/", 1)[0] + "/ivr_restart"
        await place(caller, engine, "13700000921", "11")
        await stored(url, "13700000921", in_progress=False, timeout_s=15)
        straddling = asyncio.create_task(place(caller, engine, "13700000922", "22", wait_s=4.0))
        try:
            await stored(url, "13700000922", in_progress=True, timeout_s=15)
            await asyncio.to_thread(postgres.stop, "fast")  # every connection cut, as a restart does
            await straddling  # its end, and its journey's last events, are written while the database is down
        finally:
            straddling.cancel()
        await asyncio.to_thread(postgres.start)
        await place(caller, engine, "13700000924", "44")
        finished = await all_stored(url, ["13700000921", "13700000922"], last="13700000924")
    assert_nothing_lost(url, finished, "13700000921")


async def test_a_call_while_postgresql_is_down_is_served_and_recorded_when_it_is_back(
    postgres: PostgresServer, caller: TestCaller, tmp_path: pathlib.Path
) -> None:
    async with engine_on(postgres, tmp_path) as engine:
        url = postgres.dsn.rsplit("/", 1)[0] + "/ivr_restart"
        await place(caller, engine, "13700000931", "11")
        await stored(url, "13700000931", in_progress=False, timeout_s=15)
        await asyncio.to_thread(postgres.stop, "fast")
        await place(caller, engine, "13700000933", "33")
        await asyncio.to_thread(postgres.start)
        await place(caller, engine, "13700000934", "44")
        finished = await all_stored(url, ["13700000931", "13700000933"], last="13700000934")
    assert_nothing_lost(url, finished, "13700000931")
