from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivr.testing.sipharness import Harness, start


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """Our user agent with the echo application on an ephemeral UDP loopback port."""
    h = await start("127.0.0.1", 0, users={"agent7": "s3cret"})
    try:
        yield h
    finally:
        await h.close()
