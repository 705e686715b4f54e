"""Reading the dashboard's live stream (`GET /api/events`) the way the page does, for tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp


async def until_live(session: aiohttp.ClientSession, url: str, ready: Callable[[dict[str, Any]], bool],
                     timeout_s: float = 10.0) -> dict[str, Any]:
    """The first `live` snapshot on `url`'s event stream for which `ready` holds (`session` carries the token)."""
    seen: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s), session.get(url + "/api/events") as response:
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and event == "live":
                    seen = json.loads(line[len("data: "):])
                    if ready(seen):
                        return seen
    except TimeoutError:
        pass
    raise AssertionError(f"no live snapshot as expected within {timeout_s} s; the last: {seen}")
