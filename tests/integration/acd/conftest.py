from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.testing import peers
from ivr.testing.redis_server import local_redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port for this module's tests."""
    if peers.REDIS_SERVER.missing:
        pytest.skip(peers.REDIS_SERVER.reason)
    with local_redis_server() as url:
        yield url
