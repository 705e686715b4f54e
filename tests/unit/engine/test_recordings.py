"""The engine's recording desk and supervision, without SIP: journey steps, pause/resume, refusals."""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.call import PlaybackResult, Prompt, QueueOutcomeKind, QueueRequest, QueueResult, RecordingMode
from ivr.clock import FakeClock
from ivr.engine.events import CallEvent, CallEvents, JourneyStepped
from ivr.engine.legs import BridgeWatcher, MediaLeg
from ivr.engine.recordings import (
    ENGINE_SEQ_BASE,
    CallBridges,
    EngineJourney,
    LiveBridge,
    RecordedQueues,
    RecordingDesk,
)
from ivr.engine.supervision import Supervision, SupervisionRefused
from ivr.media.bridge import Bridge, SupervisorMode
from ivr.media.g711 import PCMU
from ivr.recording import Recorder, RecordingPolicy
from ivr.voice import PromptUnavailable
from tests.unit.engine.engine_fakes import FakeLeg as CallerLeg
from tests.unit.media.test_bridge import FakeLeg

WALL = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class Steps:
    def __init__(self) -> None:
        self.steps: list[tuple[str, int, str, dict[str, Any]]] = []

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, JourneyStepped):
            step = event.step
            self.steps.append((step.call_id, step.seq, step.kind, dict(step.data)))


def _desk(tmp_path: pathlib.Path, clock: FakeClock, steps: Steps) -> RecordingDesk:
    journey = EngineJourney(CallEvents([steps]), clock)
    return RecordingDesk(Recorder(tmp_path), RecordingPolicy(RecordingMode.ALWAYS), CallBridges(), journey, clock)


def _live(desk: RecordingDesk, call_id: str) -> LiveBridge:
    live = LiveBridge(call_id, Bridge(FakeLeg(PCMU), FakeLeg(PCMU)), None, None)  # type: ignore[arg-type]
    desk.bridges.add(live)
    return live


def test_engine_steps_are_numbered_per_call_above_the_interpreters(tmp_path: pathlib.Path) -> None:
    steps = Steps()
    journey = EngineJourney(CallEvents([steps]), FakeClock(wall_start=WALL))
    journey.step("c1", "a")
    journey.step("c2", "b")
    journey.step("c1", "c", {"x": 1})
    assert [(c, s, k) for c, s, k, _ in steps.steps] == [
        ("c1", ENGINE_SEQ_BASE, "a"), ("c2", ENGINE_SEQ_BASE, "b"), ("c1", ENGINE_SEQ_BASE + 1, "c")]


async def test_a_recording_pauses_resumes_and_stops_as_journey_steps(tmp_path: pathlib.Path) -> None:
    clock, steps = FakeClock(wall_start=WALL), Steps()
    desk = _desk(tmp_path, clock, steps)
    live = _live(desk, "c1")
    desk.start(live)
    await clock.advance(2.0)
    assert desk.pause("c1") is live.recording
    assert desk.pause("c1") is live.recording  # already paused: no second step
    await clock.advance(1.5)
    desk.resume("c1")
    await clock.advance(0.5)
    desk.stop(live)
    desk.recorder.close()  # type: ignore[union-attr]
    kinds = [(kind, data) for _, _, kind, data in steps.steps]
    path = str(tmp_path / "2026-12-06" / "c1.wav")
    assert kinds == [
        ("recording_started", {"path": path}),
        ("recording_paused", {"at_s": 2.0}),
        ("recording_resumed", {"at_s": 3.5}),
        ("recording_stopped", {"path": path, "duration_s": 4.0, "pauses": [[2.0, 3.5]], "dropped_frames": 0}),
    ]
    assert await asyncio.to_thread(os.path.getsize, path) == 44 + 4 * 8000 * 4
    assert desk.pause("unknown") is None


async def test_supervision_refuses_what_it_cannot_do(tmp_path: pathlib.Path) -> None:
    clock, steps = FakeClock(wall_start=WALL), Steps()
    desk = _desk(tmp_path, clock, steps)
    live = _live(desk, "c1")
    supervision = Supervision(desk.bridges, desk.journey, clock, contact_of=lambda who: None)
    with pytest.raises(SupervisionRefused, match="not bridged") as unknown:
        supervision.start("c9", SupervisorMode.LISTEN, "s1")
    assert unknown.value.status == 404
    with pytest.raises(SupervisionRefused, match="no registered phone") as no_phone:
        supervision.start("c1", SupervisorMode.LISTEN, "s1")
    assert no_phone.value.status == 409
    live.supervisor = "s2"
    with pytest.raises(SupervisionRefused, match="already supervised by 's2'") as taken:
        supervision.start("c1", SupervisorMode.BARGE, "s1")
    assert taken.value.status == 409


def test_a_closed_bridge_is_no_longer_live(tmp_path: pathlib.Path) -> None:
    desk = _desk(tmp_path, FakeClock(wall_start=WALL), Steps())
    live = _live(desk, "c1")
    assert desk.bridges.get("c1") is live
    live.bridge.close()
    assert desk.bridges.get("c1") is None


# --- the queue service wrapper: policy, consent, one file per bridge -------------------------------


class WatchedLeg(CallerLeg):
    """The engine fakes' caller leg, telling watchers of its bridges as `SipMediaLeg.on_bridged` does."""

    def __init__(self, call_id: str, clock: FakeClock, *, consent_fails: bool = False) -> None:
        super().__init__(call_id, clock)
        self.watchers: list[BridgeWatcher] = []
        self._consent_fails = consent_fails

    def on_bridged(self, watcher: BridgeWatcher) -> Callable[[], None]:
        self.watchers.append(watcher)
        return lambda: self.watchers.remove(watcher)

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        if self._consent_fails:
            raise PromptUnavailable("recording_consent", "en", [("en", "not in this flow")])
        return await super().play(prompts, barge_in=barge_in)


class TwoAgents:
    """A queue service that bridges the caller twice (an agent, then a transfer to another), 3 s each."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    async def serve(self, leg: MediaLeg, request: QueueRequest, *, caller: str) -> QueueResult:
        assert isinstance(leg, WatchedLeg)
        for agent in ("agent-1", "agent-2"):
            bridge = Bridge(FakeLeg(PCMU), FakeLeg(PCMU))
            for watcher in list(leg.watchers):
                watcher(bridge, CallerLeg(agent, self._clock))
            await self._clock.sleep(3.0)
            bridge.close()
        return QueueResult(QueueOutcomeKind.ANSWERED, request.queue, agent_id="a2")


@pytest.mark.parametrize(
    ("node", "queue", "consent_fails", "played", "files"),
    [
        (None, RecordingMode.ALWAYS, False, [], ["c1-2.wav", "c1.wav"]),
        (RecordingMode.CONSENT, RecordingMode.NEVER, False, ["recording_consent"], ["c1-2.wav", "c1.wav"]),
        (RecordingMode.CONSENT, None, True, [], []),
        (RecordingMode.NEVER, RecordingMode.ALWAYS, False, [], []),
        (None, None, False, [], []),
    ],
    ids=["queue-always", "node-consent", "consent-unplayable", "node-never", "default-never"],
)
async def test_policy_decides_and_each_bridge_gets_its_file(
    tmp_path: pathlib.Path, node: RecordingMode | None, queue: RecordingMode | None, consent_fails: bool,
    played: list[str], files: list[str],
) -> None:
    clock, steps = FakeClock(wall_start=WALL), Steps()
    journey = EngineJourney(CallEvents([steps]), clock)
    policy = RecordingPolicy(RecordingMode.NEVER, {"general": queue} if queue is not None else {})
    desk = RecordingDesk(Recorder(tmp_path), policy, CallBridges(), journey, clock)
    leg = WatchedLeg("c1", clock, consent_fails=consent_fails)
    async with clock.autojump():
        result = await RecordedQueues(TwoAgents(clock), desk).serve(
            leg, QueueRequest("general", recording=node), caller="13800000001")
    desk.recorder.close()  # type: ignore[union-attr]
    assert result.kind is QueueOutcomeKind.ANSWERED and leg.played == played
    assert sorted(await asyncio.to_thread(lambda: [p.name for p in tmp_path.rglob("*.wav")])) == files
    stopped = [data for _, _, kind, data in steps.steps if kind == "recording_stopped"]
    assert [s["duration_s"] for s in stopped] == [3.0] * len(files)
    assert leg.watchers == [] and len(desk.bridges) == 0
