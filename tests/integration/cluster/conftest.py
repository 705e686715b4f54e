"""One PostgreSQL per test module and one Redis (append-only, as a cluster runs it) per test; one cluster
at a time on this machine."""

from __future__ import annotations

import fcntl
import pathlib
import tempfile
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


CLUSTER_LOCK = pathlib.Path(tempfile.gettempdir()) / "ivr-test-cluster.lock"


@pytest.fixture(autouse=True)
def one_cluster_at_a_time() -> Iterator[None]:
    """Two clusters at once (three engines, Kamailio, PostgreSQL, Redis and SIPp at 20 calls/s each) overload
    two cores until engines miss the proxy's 2 s answer deadline and get taken out, and callers get 503 (seen
    with `make test`'s xdist workers): the workers take turns, by a lock on a file, held for the test."""
    with CLUSTER_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the worker dies
        yield
