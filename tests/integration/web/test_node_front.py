"""Worker 0's HTTP port serves a node of workers as one node (issue 22, `ivr.web.node`): two web apps on
loopback stand for two workers. The front mirrors the other worker's calls into its live stream and its
/metrics, and carries out an action on a call or an agent's phone at the worker that holds it."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest

from ivr.clock import LoopClock
from ivr.store import SqliteStore
from ivr.web import ApiAccess, LiveState, Role, create_app
from ivr.web.agents import add_agent_routes
from ivr.web.node import NodeParts, NodeRole, add_node_routes
from ivr.web.recordings import add_recording_routes
from tests.integration.web.conftest import serve_app
from tests.integration.web.livestream import until_live
from tests.unit.web.web_rig import FakeControl, FakeRecording

pytestmark = pytest.mark.integration

NODE_TOKEN = "ivr_node-secret-for-this-test"
VIEWER, SUPERVISOR = "ivr_node-test-viewer", "ivr_node-test-supervisor"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def access() -> ApiAccess:
    return ApiAccess.for_tokens((VIEWER, "wall-screen", Role.VIEWER), (SUPERVISOR, "duty-lead", Role.SUPERVISOR))


@dataclass
class Desk:
    """An agent desk: the phones registered with this worker, and the controls it carried out."""

    phones: dict[str, str] = field(default_factory=dict)
    done: list[tuple[str, str]] = field(default_factory=list)

    async def pause(self, agent_id: str, reason: str = "break") -> None:
        self.done.append(("pause", agent_id))

    async def resume(self, agent_id: str) -> None:
        self.done.append(("resume", agent_id))

    async def wrap_up_done(self, agent_id: str) -> None:
        self.done.append(("wrapup-done", agent_id))

    async def logout(self, agent_id: str) -> None:
        self.done.append(("logout", agent_id))

    async def login(self, agent_id: str) -> None:
        self.done.append(("login", agent_id))


@dataclass
class Worker:
    live: LiveState
    desk: Desk
    recordings: FakeControl
    url: str = ""


@asynccontextmanager
async def worker(tmp: pathlib.Path, index: int, peers: tuple[tuple[str, str], ...] = ()) -> AsyncIterator[Worker]:
    live, desk = LiveState(), Desk()
    recordings = FakeControl(tmp)
    store = SqliteStore(tmp / f"w{index}.db")
    app = create_app(store=store, live=live, access=access(), clock=LoopClock(), sse_debounce_s=0.05)
    add_agent_routes(app, desk, live)
    add_recording_routes(app, recordings)
    add_node_routes(app, NodeRole(index, NODE_TOKEN, peers), NodeParts(live, LoopClock(), store,
                                                                       phone_of=desk.phones.get))
    try:
        async with serve_app(app) as url:
            yield Worker(live, desk, recordings, url)
    finally:
        await asyncio.to_thread(store.close)


async def test_the_front_shows_and_serves_what_another_worker_holds(tmp_path: pathlib.Path) -> None:
    async with worker(tmp_path, 1) as other:
        other.live.call_started("held-by-w1", "13800000001", "95519", T0)
        other.live.call_enqueued("held-by-w1", "general", T0)
        other.recordings.live["held-by-w1"] = FakeRecording(tmp_path / "held-by-w1.wav")
        other.desk.phones["a1"] = "sip:a1@127.0.0.1:5090"
        async with worker(tmp_path, 0, (("w1", other.url),)) as front, \
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {SUPERVISOR}"}) as session:
            live = await until_live(session, front.url, lambda s: s["in_queue"] == 1)
            assert [c["call_id"] for c in live["recent"]] == ["held-by-w1"]
            assert front.live.holder("held-by-w1") == "w1"

            async with session.get(front.url + "/metrics") as response:
                metrics = await response.text()
            assert "\nivr_calls_total 1\n" in metrics, "the other worker's call, summed in"
            assert "\nivr_queue_length{queue=\"general\"} 1\n" in metrics
            assert "\nivr_node_workers_scraped 2\n" in metrics

            async with session.post(front.url + "/api/calls/held-by-w1/recording/pause", json={}) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["paused"] is True
            assert other.recordings.live["held-by-w1"].paused

            async with session.post(front.url + "/api/agents/a1/logout", json={}) as response:
                assert response.status == 200, await response.text()
            async with session.post(front.url + "/api/agents/a1/pause", json={}) as response:
                assert response.status == 200, await response.text()
            assert other.desk.done == [("logout", "a1")], "the phone's worker logs the agent out"
            assert front.desk.done == [("pause", "a1")], "a pause goes through the shared ACD from any worker"

            other.live.call_ended("held-by-w1")
            live = await until_live(session, front.url, lambda s: s["in_queue"] == 0)
            assert live["recent"] == []


async def test_only_the_node_may_use_the_node_routes_and_the_front_checks_roles_first(tmp_path: pathlib.Path
                                                                                       ) -> None:
    async with worker(tmp_path, 1) as other:
        other.live.call_started("held-by-w1", "13800000001", "95519", T0)
        other.recordings.live["held-by-w1"] = FakeRecording(tmp_path / "held-by-w1.wav")
        async with worker(tmp_path, 0, (("w1", other.url),)) as front, \
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {SUPERVISOR}"}) as session:
            await until_live(session, front.url, lambda s: s["in_ivr"] == 1)
            async with session.get(other.url + "/api/node/calls") as response:
                assert response.status == 403, "a person's token, however strong, is not the node's"
            async with session.post(front.url + "/api/calls/held-by-w1/recording/pause", json={},
                                    headers={"Authorization": f"Bearer {VIEWER}"}) as response:
                assert response.status == 403, "the front checks the role before it forwards"
            assert not other.recordings.live["held-by-w1"].paused
