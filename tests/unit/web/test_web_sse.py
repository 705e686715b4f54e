"""Server-Sent Events: the first `live` snapshot, a push per change, a `calls` push per commit."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_contract import sample_calls, write_calls  # noqa: E402
from web_rig import Rig  # noqa: E402

from ivr.web.sse import SseHub, format_event  # noqa: E402

Client = TestClient[web.Request, web.Application]


async def next_event(resp: ClientResponse) -> tuple[str, Any]:
    event, data = "", []
    async with asyncio.timeout(10):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event:
                return event, json.loads("\n".join(data))


async def test_live_snapshot_first_then_a_push_per_change(client: Client, rig: Rig) -> None:
    resp = await client.get("/api/events")
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    event, body = await next_event(resp)
    assert event == "live" and body["in_ivr"] == 0
    rig.live.call_started("c1", "13800000000", "95500", rig.clock.wall(), dialect="yue")
    event, body = await next_event(resp)
    assert event == "live" and body["in_ivr"] == 1
    assert body["recent"][0]["call_id"] == "c1" and body["recent"][0]["dialect"] == "yue"
    resp.close()


async def test_committed_calls_are_announced(client: Client, rig: Rig) -> None:
    resp = await client.get("/api/events")
    assert (await next_event(resp))[0] == "live"
    calls = sample_calls()[:3]
    write_calls(rig.store, calls)
    finished = 0
    while finished < 3:
        event, body = await next_event(resp)
        assert event == "calls"
        finished += body["finished"]
    assert finished == 3
    resp.close()


def test_multiline_data_is_framed_per_line() -> None:
    assert format_event("live", '{"a":\n1}') == b'event: live\ndata: {"a":\ndata: 1}\n\n'


async def test_with_no_stream_open_a_change_schedules_nothing_and_a_new_stream_sees_it(rig: Rig) -> None:
    hub = SseHub(rig.live, None, rig.clock.wall)
    hub.start()
    try:
        rig.live.call_started("c1", "13800000000", "95500", rig.clock.wall())
        assert hub._live_timer is None  # nobody to push to: no timer, no hand-off
        assert json.loads(hub.live_json())["in_ivr"] == 1  # what a stream opened now starts with
    finally:
        hub.stop()


async def test_with_no_stream_open_a_commit_hands_nothing_to_the_loop(rig: Rig) -> None:
    hub = SseHub(rig.live, rig.store, rig.clock.wall)
    hub.start()
    try:
        write_calls(rig.store, sample_calls()[:2])
        assert rig.store.flush(5)
        await asyncio.sleep(0.05)  # a hand-off, had there been one, would have run by now
        assert hub._calls_timer is None and not any(hub._calls_pending.values())
    finally:
        hub.stop()
