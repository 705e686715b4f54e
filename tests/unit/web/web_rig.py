"""Fakes and the test rig for the web tests (imported by conftest.py and the tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.clock import FakeClock
from ivr.errors import IvrError
from ivr.store import SqliteStore
from ivr.web import DispatchRequest, DispatchResult, EngineMetrics, LiveState

WALL = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


class UnknownDialect(IvrError):
    pass


@dataclass
class FakeDispatcher:
    requests: list[DispatchRequest] = field(default_factory=list)

    async def dispatch(self, request: DispatchRequest) -> DispatchResult:
        self.requests.append(request)
        if request.queue == "nowhere":
            raise IvrError(f"unknown queue {request.queue!r}")
        if request.agents > 50:
            return DispatchResult(False, 0, "only 12 agents free in the regions asked")
        return DispatchResult(True, request.agents, "moved")


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
