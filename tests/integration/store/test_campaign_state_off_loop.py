"""A campaign state in PostgreSQL that stops answering (a silent host, not a refused port) under a running
engine's dialer (issue 22): the dialer's queries wait on a thread; the engine's event loop runs on.

Before issue 22 the dialer asked `lead()` (a `SELECT 1` or an advisory lock) on the loop every second with a
shared state: a silent database stopped the whole engine (every call's media) for as long as it stayed so.
The engine runs in this process (on this loop); the loop-lag monitor of `ivr serve` measures it here.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest

from ivr.engine.looplag import LoopLagMonitor
from ivr.testing.postgres_server import PostgresServer
from tests.integration.outbound.conftest import campaign_yaml, outbound_engine
from tests.integration.store import test_postgres_restart as restart
from tests.integration.store.relay import FreezableRelay, freezable_relay

pytestmark = pytest.mark.integration

postgres = restart.postgres
SAMPLES = 40
"""Loop-lag samples (every 50 ms: two seconds, past the dialer's one-second poll) taken while silent."""
STALL_S = 1.0
"""A lag past this is a stall: the connect timeout is 10 s, and a query to a silent host waits forever."""


@pytest.fixture
def relay(postgres: PostgresServer) -> Iterator[FreezableRelay]:
    with freezable_relay(("127.0.0.1", postgres.port)) as running:
        yield running


async def test_a_silent_shared_campaign_state_does_not_stall_the_engine_loop(
    postgres: PostgresServer, relay: FreezableRelay, tmp_path: pathlib.Path
) -> None:
    db = relay.dsn(postgres.database("ivr_campaign_silent"))
    async with outbound_engine(tmp_path, {"silent": campaign_yaml("silent", 5999)}, db=db) as rig:
        assert rig.outbound.scheduler.store.shared
        lags: list[float] = []
        enough = asyncio.Event()

        def observe(lag: float) -> None:
            lags.append(lag)
            if len(lags) >= SAMPLES:
                enough.set()

        relay.freeze()
        try:
            assert await asyncio.to_thread(relay.held.wait, 10)  # a query waits on the silent host now
            monitor = LoopLagMonitor(rig.engine.clock, observe)
            monitor.start()
            async with asyncio.timeout(30):
                await enough.wait()
            monitor.stop()
        finally:
            relay.thaw()
    assert max(lags) < STALL_S, sorted(lags)[-5:]
