"""Media sessions on a driven clock and an in-memory network (no sockets): the fixtures every
session-level test here shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.clock import FakeClock
from ivr.rtp import MediaEngine
from ivr.testing.rtpprobe import MemoryNetwork


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def net() -> MemoryNetwork:
    return MemoryNetwork()


@pytest.fixture
async def engine(clock: FakeClock, net: MemoryNetwork) -> AsyncIterator[MediaEngine]:
    engine = MediaEngine(clock=clock, network=net, port_first=30000, port_last=30999)
    yield engine
    engine.close()
