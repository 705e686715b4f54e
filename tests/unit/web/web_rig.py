"""Fakes and the test rig for the web tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ivr.clock import FakeClock
from ivr.errors import IvrError
from ivr.media.bridge import SupervisorMode
from ivr.outbound.scheduler import Scheduler
from ivr.store import SqliteStore
from ivr.web import (
    ApiAccess,
    DispatchChangeKind,
    DispatchChangeView,
    DispatchRequest,
    DispatchView,
    EngineMetrics,
    LiveState,
    Role,
    UnknownDispatch,
)

WALL = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

VIEWER, SUPERVISOR, ADMIN = "ivr_test-viewer-token", "ivr_test-supervisor-token", "ivr_test-admin-token"
ACCESS = ApiAccess.for_tokens(
    (VIEWER, "wall-screen", Role.VIEWER), (SUPERVISOR, "shift-lead", Role.SUPERVISOR), (ADMIN, "ops-lead", Role.ADMIN)
)
"""One token per role; the admin's name, "ops-lead", is what the dispatch log records as requested_by."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_spec_matches_routes(spec: dict[str, Any], app: web.Application) -> None:
    """Every route `app` serves (but its static files) is in the OpenAPI `spec`, nothing else is, and
    every schema an answer refers to exists."""
    routed = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD" and not r.resource.canonical.startswith("/static")
    }
    documented = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert routed == documented
    for item in spec["paths"].values():
        for op in item.values():
            for response in op["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media["schema"].get("$ref", "")
                    assert not ref or ref.split("/")[-1] in spec["components"]["schemas"]


@dataclass
class CampaignControl:
    """What `ivr.web.outbound` drives (the engine's outbound part): a real scheduler, a wall clock, no dialer."""

    scheduler: Scheduler
    clock: Callable[[], datetime] = lambda: WALL

    def wake(self) -> None:
        pass

    def wall(self) -> datetime:
        return self.clock()


class UnknownDialect(IvrError):
    pass


class Refused(IvrError):
    pass


REGION_QUEUES = {"south": ("claims", "service"), "north": ("general",)}
SITES = ("beijing", "shanghai", "guangzhou")


@dataclass
class FakeDispatcher:
    """Keeps dispatches like the ACD does: ids d1, d2...; refuses unknown regions, queues and sites."""

    clock: FakeClock
    requests: list[DispatchRequest] = field(default_factory=list)
    live: dict[str, DispatchView] = field(default_factory=dict)
    log: list[DispatchChangeView] = field(default_factory=list)

    async def dispatch(self, request: DispatchRequest) -> DispatchView:
        self.requests.append(request)
        if request.region not in REGION_QUEUES:
            raise Refused(f"dispatch names unknown region {request.region!r}")
        for name in request.queues:
            if name not in REGION_QUEUES[request.region]:
                raise Refused(f"dispatch names unknown queue {name!r}")
        for site in request.helper_sites:
            if site not in SITES:
                raise Refused(f"dispatch names unknown helper site {site!r}")
        view = DispatchView(
            f"d{len(self.log) + 1}", request.region, request.queues or REGION_QUEUES[request.region],
            request.helper_sites, self.clock.wall(), request.until, request.reason, request.requested_by,
        )  # fmt: skip
        self.live[view.dispatch_id] = view
        self.log.append(DispatchChangeView(DispatchChangeKind.STARTED, view, self.clock.wall()))
        return view

    async def end_dispatch(self, dispatch_id: str) -> DispatchView:
        view = self.live.pop(dispatch_id, None)
        if view is None:
            if any(c.dispatch.dispatch_id == dispatch_id for c in self.log):
                raise Refused(f"dispatch {dispatch_id!r} already ended")
            raise UnknownDispatch(f"no dispatch {dispatch_id!r}")
        self.log.append(DispatchChangeView(DispatchChangeKind.ENDED, view, self.clock.wall()))
        return view

    def active(self) -> list[DispatchView]:
        return list(self.live.values())

    def changes(self) -> list[DispatchChangeView]:
        return list(self.log)


@dataclass
class FakeDialects:
    known: tuple[str, ...] = ("cmn", "yue", "hak", "nan")
    saved: dict[str, str] = field(default_factory=dict)

    async def set_dialect(self, caller: str, dialect: str) -> None:
        if dialect not in self.known:
            raise UnknownDialect(f"unknown dialect {dialect!r}: known are {', '.join(self.known)}")
        self.saved[caller] = dialect


@dataclass
class Rig:
    store: SqliteStore
    live: LiveState
    clock: FakeClock
    metrics: EngineMetrics
    dispatcher: FakeDispatcher
    dialects: FakeDialects
    ready: list[bool]
    draining: list[bool]


@dataclass
class FakeRecording:
    path: pathlib.Path
    paused: bool = False
    stopped: bool = False


@dataclass
class FakeControl:
    directory: pathlib.Path | None
    live: dict[str, FakeRecording] = field(default_factory=dict)
    supervised: list[tuple[str, SupervisorMode, str]] = field(default_factory=list)

    def pause(self, call_id: str) -> FakeRecording | None:
        recording = self.live.get(call_id)
        if recording is not None:
            recording.paused = True
        return recording

    def resume(self, call_id: str) -> FakeRecording | None:
        recording = self.live.get(call_id)
        if recording is not None:
            recording.paused = False
        return recording

    def supervise(self, call_id: str, mode: SupervisorMode, supervisor: str) -> tuple[int, str] | None:
        if call_id not in self.live:
            return 404, f"call {call_id!r} is not bridged to an agent on this engine"
        self.supervised.append((call_id, mode, supervisor))
        return None
