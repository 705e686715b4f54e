from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import ACCESS, ADMIN, WALL, FakeDialects, FakeDispatcher, Rig, bearer

from ivr.clock import FakeClock
from ivr.store import SqliteStore
from ivr.web import EngineMetrics, LiveState, create_app


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock(wall_start=WALL)
    store = SqliteStore(tmp_path / "calls.db", clock=clock)
    yield Rig(store, LiveState(), clock, EngineMetrics(), FakeDispatcher(clock), FakeDialects(), [True], [False])
    store.close()


@pytest.fixture
def app(rig: Rig) -> web.Application:
    return create_app(
        store=rig.store,
        live=rig.live,
        access=ACCESS,
        dispatcher=rig.dispatcher,
        dialects=rig.dialects,
        metrics=rig.metrics,
        ready=lambda: rig.ready[0],
        draining=lambda: rig.draining[0],
        clock=rig.clock,
        sse_debounce_s=0.0,
        summary_cache_s=0.0,
    )


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client holding the admin token (named "ops-lead"), so every route is open to it."""
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(ADMIN)) as c:
        yield c


@pytest.fixture
async def anonymous(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client that sends no token."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a structlog configuration another test left behind (`ivr.cli.main` binds the captured,
    since closed, stderr), so this package's log lines cannot fail on a closed stream."""
    structlog.reset_defaults()

