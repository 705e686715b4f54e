"""The live stream by role: a viewer's wall screen sees the calls in progress with callers' numbers masked
to their last 4 digits (as the logs show them); a supervisor's stream carries them whole, as the call
records a supervisor may read do. Both at the first snapshot and at every push after a change."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from test_web_sse import next_event
from web_rig import SUPERVISOR, VIEWER, Rig, bearer

Client = TestClient[web.Request, web.Application]


async def test_a_viewer_sees_masked_numbers_a_supervisor_whole_ones(app: web.Application, rig: Rig) -> None:
    rig.live.call_started("c0", "13912345678", "95519", rig.clock.wall(), dialect="cmn")
    async with (
        TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(VIEWER)) as viewer,
        TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(SUPERVISOR)) as supervisor,
    ):
        wall, lead = await viewer.get("/api/events"), await supervisor.get("/api/events")
        (_, seen), (_, full) = await next_event(wall), await next_event(lead)
        assert [c["caller"] for c in seen["recent"]] == ["*******5678"]
        assert [c["caller"] for c in full["recent"]] == ["13912345678"]
        rig.live.call_started("c1", "+8613800001234", "95519", rig.clock.wall(), dialect="yue")
        (_, seen), (_, full) = await next_event(wall), await next_event(lead)
        assert sorted(c["caller"] for c in seen["recent"]) == ["*******5678", "+*********1234"]
        assert sorted(c["caller"] for c in full["recent"]) == ["+8613800001234", "13912345678"]
        assert seen["in_ivr"] == full["in_ivr"] == 2
        wall.close()
        lead.close()
