"""Recording and supervision routes (issue 20). All need the supervisor role: recordings are personal data.

    GET  /api/recordings                     the newest recordings (call id, size, length)
    GET  /api/calls/{id}/recording           the call's recording, audio/wav (stereo: caller left, agent right)
    POST /api/calls/{id}/recording/pause     stop recording (card numbers); silence is written meanwhile
    POST /api/calls/{id}/recording/resume
    POST /api/calls/{id}/supervise           {mode: listen|whisper|barge, supervisor: <agent id>}: the engine
                                             calls the supervisor's phone and joins it to the call (202)

A finished call's recording is found through its journey (`recording_stopped` step) and served only
from inside the configured recording directory. Registered by `add_recording_routes(app, control)`.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ivr.media.bridge import SupervisorMode
from ivr.recording.stereo import CHANNELS
from ivr.recording.timeline import RATE_HZ
from ivr.web.access import Role
from ivr.web.api import SOURCES, json_body, json_error
from ivr.web.guard import RouteSpec, add_routes

MAX_LISTED = 200
_WAV_HEADER_BYTES = 44


class RecordingState(Protocol):
    path: pathlib.Path

    @property
    def paused(self) -> bool: ...

    @property
    def stopped(self) -> bool: ...


class RecordingControl(Protocol):
    """What the engine offers these routes (`ivr.engine.recordings.RecordingDesk` + supervision)."""

    @property
    def directory(self) -> pathlib.Path | None: ...

    def pause(self, call_id: str) -> RecordingState | None: ...

    def resume(self, call_id: str) -> RecordingState | None: ...

    def supervise(self, call_id: str, mode: SupervisorMode, supervisor: str) -> tuple[int, str] | None:
        """Start (or switch) supervision: None, or (HTTP status, why) when it cannot (404, 409)."""
        ...


RECORDINGS = web.AppKey("ivr_web_recordings", RecordingControl)


def _control(request: web.Request) -> RecordingControl:
    return request.app[RECORDINGS]


def _inside(path: pathlib.Path, directory: pathlib.Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _duration_s(size_bytes: int) -> float:
    return round(max(0, size_bytes - _WAV_HEADER_BYTES) / (CHANNELS * 2 * RATE_HZ), 2)


def newest_recordings(directory: pathlib.Path, limit: int) -> list[dict[str, Any]]:
    """The `limit` newest files under `directory` (day folders of `<call>.wav`), blocking."""
    if not directory.is_dir():
        return []
    files: list[tuple[float, pathlib.Path, int]] = []
    for day in sorted((d for d in directory.iterdir() if d.is_dir()), reverse=True):
        for file in day.glob("*.wav"):
            stat = file.stat()
            files.append((stat.st_mtime, file, stat.st_size))
        if len(files) >= limit:
            break
    files.sort(key=lambda item: item[0], reverse=True)
    return [{"call_id": file.stem, "day": file.parent.name, "size_bytes": size, "duration_s": _duration_s(size)}
            for _, file, size in files[:limit]]


async def list_recordings(request: web.Request) -> web.Response:
    directory = _control(request).directory
    try:
        limit = min(MAX_LISTED, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        return json_error(400, "limit must be a whole number")
    items = await asyncio.to_thread(newest_recordings, directory, limit) if directory is not None else []
    return web.json_response({"recordings": items})


def _recorded_path(journey: list[Any]) -> str | None:
    for step in reversed(journey):
        if step.kind == "recording_stopped":
            return str(step.data.get("path", "")) or None
    return None


async def get_recording(request: web.Request) -> web.StreamResponse:
    control = _control(request)
    call_id = request.match_info["call_id"]
    directory = control.directory
    if directory is None:
        return json_error(404, "recording is not configured on this engine (recording_dir)")
    detail = await asyncio.to_thread(request.app[SOURCES].store.get_call, call_id)
    if detail is None:
        return json_error(404, f"no call with id {call_id!r}")
    recorded = _recorded_path(list(detail.journey))
    if recorded is None:
        return json_error(404, f"call {call_id!r} has no finished recording")
    path = pathlib.Path(recorded)
    if not _inside(path, directory) or not await asyncio.to_thread(path.is_file):
        return json_error(404, f"the recording of call {call_id!r} is no longer kept")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"})


def _switcher(pause: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        control = _control(request)
        state = control.pause(call_id) if pause else control.resume(call_id)
        if state is None:
            return json_error(404, f"call {call_id!r} has no recording in progress")
        return web.json_response({"call_id": call_id, "paused": state.paused, "path": str(state.path)})

    return handler


async def supervise(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    body = await json_body(request)
    modes = [m.value for m in SupervisorMode]
    if body.get("mode") not in modes:
        return json_error(400, f"field 'mode' must be one of {', '.join(modes)}")
    supervisor = body.get("supervisor")
    if not isinstance(supervisor, str) or not supervisor:
        return json_error(400, "field 'supervisor' must name the supervisor (their agent id)")
    refused = _control(request).supervise(call_id, SupervisorMode(body["mode"]), supervisor)
    if refused is not None:
        return json_error(*refused)
    return web.json_response({"call_id": call_id, "mode": body["mode"], "supervisor": supervisor}, status=202)


ROUTES: tuple[RouteSpec, ...] = (
    ("GET", "/api/recordings", list_recordings, Role.SUPERVISOR),
    ("GET", "/api/calls/{call_id}/recording", get_recording, Role.SUPERVISOR),
    ("POST", "/api/calls/{call_id}/recording/pause", _switcher(True), Role.SUPERVISOR),
    ("POST", "/api/calls/{call_id}/recording/resume", _switcher(False), Role.SUPERVISOR),
    ("POST", "/api/calls/{call_id}/supervise", supervise, Role.SUPERVISOR),
)


def add_recording_routes(app: web.Application, control: RecordingControl) -> None:
    """Call right after `create_app`, before the app starts: the routes and their roles."""
    app[RECORDINGS] = control
    add_routes(app, ROUTES)


__all__ = ["RECORDINGS", "ROUTES", "RecordingControl", "add_recording_routes", "newest_recordings"]
