"""The recording and supervision routes: roles, the file served only from the recording directory,
pause/resume and supervise answers, and the OpenAPI document."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import ADMIN, SUPERVISOR, VIEWER, WALL, FakeControl, FakeRecording, Rig, assert_spec_matches_routes, bearer

from ivr.journey import CallRecord, JourneyEvent
from ivr.media.bridge import SupervisorMode
from ivr.recording.stereo import wav_header
from ivr.web.recordings import add_recording_routes

Client = TestClient[web.Request, web.Application]


def _recorded_call(rig: Rig, call_id: str, path: pathlib.Path) -> None:
    record = CallRecord(call_id=call_id, caller="13800000001", dialed="95519", started_at=WALL)
    rig.store.call_started(record)
    rig.store.journey_event(JourneyEvent(call_id, 1_000_000, WALL, "", "recording_stopped",
                                         {"path": str(path), "duration_s": 0.02, "pauses": []}))
    rig.store.call_finished(record)
    assert rig.store.flush(5)


@pytest.fixture
def control(tmp_path: pathlib.Path) -> FakeControl:
    directory = tmp_path / "recordings"
    (directory / "2026-01-05").mkdir(parents=True)
    return FakeControl(directory, {"live-1": FakeRecording(directory / "2026-01-05" / "live-1.wav")})


@pytest.fixture
async def clients(app: web.Application, control: FakeControl) -> AsyncIterator[dict[str, Client]]:
    add_recording_routes(app, control)
    server = TestServer(app, host="127.0.0.1")
    async with (
        TestClient(server, headers=bearer(SUPERVISOR)) as supervisor,
        TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(VIEWER)) as viewer,
    ):
        yield {"supervisor": supervisor, "viewer": viewer}


async def test_a_finished_recording_is_served_to_a_supervisor_not_to_a_viewer(
    clients: dict[str, Client], control: FakeControl, rig: Rig
) -> None:
    assert control.directory is not None
    path = control.directory / "2026-01-05" / "c1.wav"
    path.write_bytes(wav_header(640) + bytes(640))
    _recorded_call(rig, "c1", path)
    answer = await clients["supervisor"].get("/api/calls/c1/recording")
    assert answer.status == 200 and answer.content_type == "audio/wav"
    assert await answer.read() == path.read_bytes()
    assert (await clients["viewer"].get("/api/calls/c1/recording")).status == 403
    listed = await (await clients["supervisor"].get("/api/recordings")).json()
    assert listed == {"recordings": [{"call_id": "c1", "day": "2026-01-05", "size_bytes": 684, "duration_s": 0.02}]}
    assert (await clients["viewer"].get("/api/recordings")).status == 403


async def test_a_path_outside_the_recording_directory_is_never_served(
    clients: dict[str, Client], tmp_path: pathlib.Path, rig: Rig
) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF-not-yours")
    _recorded_call(rig, "c2", secret)
    answer = await clients["supervisor"].get("/api/calls/c2/recording")
    assert answer.status == 404 and "no longer kept" in (await answer.json())["error"]
    assert (await clients["supervisor"].get("/api/calls/nope/recording")).status == 404


async def test_pause_and_resume_a_live_recording(clients: dict[str, Client], control: FakeControl) -> None:
    paused = await clients["supervisor"].post("/api/calls/live-1/recording/pause", json={})
    assert paused.status == 200 and (await paused.json())["paused"] is True
    resumed = await clients["supervisor"].post("/api/calls/live-1/recording/resume", json={})
    assert (await resumed.json())["paused"] is False
    assert (await clients["supervisor"].post("/api/calls/gone/recording/pause", json={})).status == 404
    assert (await clients["viewer"].post("/api/calls/live-1/recording/pause", json={})).status == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"mode": "barge", "supervisor": "s1"}, 202),
        ({"mode": "shout", "supervisor": "s1"}, 400),
        ({"mode": "listen"}, 400),
        ({"mode": "listen", "supervisor": ""}, 400),
    ],
    ids=["barge", "bad-mode", "no-supervisor", "empty-supervisor"],
)
async def test_supervise_checks_its_body(
    clients: dict[str, Client], control: FakeControl, body: dict[str, str], status: int
) -> None:
    answer = await clients["supervisor"].post("/api/calls/live-1/supervise", json=body)
    assert answer.status == status, await answer.text()
    if status == 202:
        assert control.supervised == [("live-1", SupervisorMode.BARGE, "s1")]


async def test_supervising_a_call_that_is_not_bridged_is_a_404(clients: dict[str, Client]) -> None:
    answer = await clients["supervisor"].post("/api/calls/other/supervise", json={"mode": "listen", "supervisor": "s1"})
    assert answer.status == 404 and "not bridged" in (await answer.json())["error"]


async def test_recording_routes_are_documented(app: web.Application, control: FakeControl) -> None:
    add_recording_routes(app, control)
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(ADMIN)) as client:
        spec = await (await client.get("/api/openapi.json")).json()
    assert_spec_matches_routes(spec, app)
    assert spec["paths"]["/api/calls/{call_id}/recording"]["get"]["description"].startswith("Needs a supervisor")
