"""One PostgreSQL per test module and one Redis (append-only, as a cluster runs it) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.testing.redis_server import RedisServer
from tests.integration.cluster.cluster import running_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as dsn:
        yield dsn


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = RedisServer(appendonly=True)
    server.start()
    try:
        yield server.url
    finally:
        server.close()
