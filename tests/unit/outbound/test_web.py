"""The outbound routes behind the API's guard: roles, event-triggered calls, progress, pause/resume."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.clock import FakeClock
from ivr.journey import CallRecord, Direction
from ivr.outbound.loader import load_text
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.store import SqliteStore
from ivr.web import ApiAccess, LiveState, Role, create_app
from ivr.web.outbound import add_outbound_routes

Client = TestClient[web.Request, web.Application]

WALL = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in Shanghai
VIEWER, SUPERVISOR = "ivr_t-viewer", "ivr_t-supervisor"
ACCESS = ApiAccess.for_tokens((VIEWER, "screen", Role.VIEWER), (SUPERVISOR, "lead", Role.SUPERVISOR))
CAMPAIGN = 'id: pay\nflow: payment_failed\ntrunk: "sip:{number}@127.0.0.1:5070"\n'


@dataclass
class Control:
    scheduler: Scheduler
    store: SqliteStore
    """The call records behind the app's /api/calls."""
    woken: list[bool] = field(default_factory=list)

    def wake(self) -> None:
        self.woken.append(True)

    def wall(self) -> dt.datetime:
        return WALL


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Client, Control]]:
    campaign = load_text(CAMPAIGN, str(tmp_path / "pay.yaml")).campaign
    assert campaign is not None
    scheduler = Scheduler(CampaignStore(tmp_path / "o.db"), flows_known=lambda f: f in ("payment_failed", "revisit"))
    scheduler.add_campaign(campaign)
    store = SqliteStore(tmp_path / "calls.db", clock=FakeClock(wall_start=WALL))
    control = Control(scheduler, store)
    app = create_app(store=store, live=LiveState(), access=ACCESS)
    add_outbound_routes(app, control)
    async with TestClient(TestServer(app)) as client:
        yield client, control
    scheduler.store.close()
    store.close()


async def test_event_triggered_call_is_queued_and_readable(rig: tuple[Client, Control]) -> None:
    client, control = rig
    body = {"campaign": "pay", "number": "13800000001", "id": "pay-42", "variables": {"name": "王芳", "amount": 3600},
            "not_before": "2026-12-02T10:30:00+08:00", "priority": 5}
    response = await client.post("/api/outbound/calls", json=body, headers=auth(SUPERVISOR))
    assert response.status == 201, await response.text()
    assert response.headers["Location"] == "/api/outbound/calls/pay-42"
    made = await response.json()
    assert made["status"] == "pending" and made["next_at"] == "2026-12-02T02:30:00+00:00" and control.woken
    got = await (await client.get("/api/outbound/calls/pay-42", headers=auth(SUPERVISOR))).json()
    assert got == made
    state = control.scheduler.target("pay", "pay-42")
    assert state is not None and state.target.variables == {"name": "王芳", "amount": "3600"}
    assert state.target.priority == 5
    again = await client.post("/api/outbound/calls", json=body, headers=auth(SUPERVISOR))
    assert again.status == 409


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"campaign": "nope", "number": "13800000001"}, 404, "no campaign 'nope'; known: pay"),
        ({"campaign": "pay", "number": "x"}, 400, "number 'x' is not a dialable number"),
        ({"campaign": "pay", "number": "13800000001", "flow": "ghost"}, 400, "field 'flow': no flow has id 'ghost'"),
        ({"campaign": "pay", "number": "13800000001", "not_before": "tomorrow"}, 400,
         "field 'not_before' must be an ISO 8601 time, got 'tomorrow'"),
    ],
)
async def test_bad_calls_are_refused(rig: tuple[Client, Control], body: dict[str, object], status: int,
                                     error: str) -> None:
    client, _ = rig
    response = await client.post("/api/outbound/calls", json=body, headers=auth(SUPERVISOR))
    assert response.status == status
    assert (await response.json())["error"] == error


async def test_roles(rig: tuple[Client, Control]) -> None:
    client, _ = rig
    body = {"campaign": "pay", "number": "13800000001"}
    assert (await client.post("/api/outbound/calls", json=body, headers=auth(VIEWER))).status == 403
    assert (await client.post("/api/outbound/calls", json=body)).status == 401
    assert (await client.post("/api/campaigns/pay/pause", headers=auth(VIEWER))).status == 403
    assert (await client.get("/api/campaigns", headers=auth(VIEWER))).status == 200
    assert (await client.get("/api/outbound/calls/x", headers=auth(VIEWER))).status == 403


async def test_progress_pause_and_resume(rig: tuple[Client, Control]) -> None:
    client, control = rig
    await client.post("/api/outbound/calls", json={"campaign": "pay", "number": "13800000001"},
                      headers=auth(SUPERVISOR))
    listed = await (await client.get("/api/campaigns", headers=auth(VIEWER))).json()
    assert listed == {"campaigns": [{"campaign": "pay", "paused": False, "targets": 1, "attempted": 0,
                                     "completed": 0, "done": 0, "completion_rate": 0.0, "results": {}}]}
    paused = await (await client.post("/api/campaigns/pay/pause", headers=auth(SUPERVISOR))).json()
    assert paused["paused"] is True and control.scheduler.is_paused("pay")
    assert control.scheduler.next_dial(WALL, 0.0, "c1") is None
    resumed = await (await client.post("/api/campaigns/pay/resume", headers=auth(SUPERVISOR))).json()
    assert resumed["paused"] is False
    one = await (await client.get("/api/campaigns/pay", headers=auth(VIEWER))).json()
    assert one["targets"] == 1


async def test_calls_are_listed_by_direction(rig: tuple[Client, Control]) -> None:
    client, control = rig
    store = control.store
    store.call_finished(CallRecord("in-1", "13800000001", "95519", WALL, flow_id="hotline"))
    store.call_finished(CallRecord("out-1", "13800000002", "4008001234", WALL, flow_id="revisit",
                                   direction=Direction.OUTBOUND))
    assert store.flush(5)
    for direction, ids in (("outbound", ["out-1"]), ("inbound", ["in-1"])):
        listed = await (await client.get(f"/api/calls?direction={direction}&since=2026-01-01",
                                          headers=auth(SUPERVISOR))).json()
        assert [c["call_id"] for c in listed["calls"]] == ids
        assert {c["direction"] for c in listed["calls"]} == {direction}
    bad = await client.get("/api/calls?direction=sideways", headers=auth(SUPERVISOR))
    assert bad.status == 400 and "direction must be inbound or outbound" in (await bad.json())["error"]
