from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.acd.redis_server import local_redis_server, redis_server_path


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port for this module's tests."""
    if redis_server_path() is None:
        pytest.skip("redis-server not installed (apt install redis-server)")
    with local_redis_server() as url:
        yield url
