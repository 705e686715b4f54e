"""Recording the calls agents take, and the live bridges supervisors join (issue 20).

`RecordedQueues` wraps the engine's queue service (the handoff): for each caller it decides the
recording policy (the flow's queue node, else the queue's, else `recording_default`), plays the
`recording_consent` announcement first when the policy asks for consent, and when the caller is
bridged to an agent (`SipMediaLeg.on_bridged`) starts a stereo recording on that bridge (left the
caller, right the agent). The bridge is kept in `CallBridges` while it lasts, for pause/resume by API
and for supervisors (`ivr.engine.supervision`). Every step is a journey event of the call
(`EngineJourney`), so the record shows the recording's path, length and pauses.
"""

from __future__ import annotations

import pathlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog

from ivr.call import CallEnded, Prompt, QueueRequest, QueueResult, RecordingMode
from ivr.clock import Clock
from ivr.config import EngineConfig
from ivr.engine.events import CallEvents
from ivr.engine.handoff import QueueService
from ivr.engine.legs import BridgeWatcher, MediaLeg
from ivr.errors import IvrError
from ivr.journey import JourneyEvent
from ivr.media.bridge import Bridge
from ivr.recording import CONSENT_PROMPT, Recorder, Recording, RecordingPolicy

log = structlog.get_logger(__name__)

ENGINE_SEQ_BASE = 1_000_000
"""Journey steps the engine adds (not the flow's interpreter, which numbers from 0) start here."""
MAX_JOURNEY_CALLS = 10_000


class EngineJourney:
    """Journey steps from outside the flow (recording, supervision): numbered per call from
    `ENGINE_SEQ_BASE` so they never collide with the interpreter's."""

    def __init__(self, events: CallEvents, clock: Clock) -> None:
        self._events = events
        self._clock = clock
        self._next: OrderedDict[str, int] = OrderedDict()

    def step(self, call_id: str, kind: str, data: Mapping[str, Any] | None = None) -> None:
        seq = self._next.pop(call_id, ENGINE_SEQ_BASE)
        self._next[call_id] = seq + 1
        while len(self._next) > MAX_JOURNEY_CALLS:
            self._next.popitem(last=False)
        self._events.journey_event(JourneyEvent(call_id, seq, self._clock.wall(), "", kind, dict(data or {})))


@dataclass(slots=True)
class LiveBridge:
    """A caller talking to an agent, as supervision and recording control see it."""

    call_id: str
    bridge: Bridge
    caller: MediaLeg
    agent: MediaLeg
    recording: Recording | None = None
    supervisor: str | None = None
    """Who supervises the call now (one at a time)."""


class CallBridges:
    """The live caller-agent bridges of this engine, by the caller's call id."""

    def __init__(self) -> None:
        self._by_call: dict[str, LiveBridge] = {}

    def get(self, call_id: str) -> LiveBridge | None:
        live = self._by_call.get(call_id)
        return live if live is not None and live.bridge.open else None

    def add(self, live: LiveBridge) -> None:
        self._by_call[live.call_id] = live

    def remove(self, live: LiveBridge) -> None:
        if self._by_call.get(live.call_id) is live:
            del self._by_call[live.call_id]

    def __len__(self) -> int:
        return len(self._by_call)


class RecordingDesk:
    """Starts, pauses, resumes and stops the recordings of bridged calls (the web API's control)."""

    def __init__(self, recorder: Recorder | None, policy: RecordingPolicy, bridges: CallBridges,
                 journey: EngineJourney, clock: Clock) -> None:
        self.recorder = recorder
        self.policy = policy
        self.bridges = bridges
        self.journey = journey
        self._clock = clock

    @property
    def directory(self) -> pathlib.Path | None:
        return self.recorder.directory if self.recorder is not None else None

    def start(self, live: LiveBridge, label: str = "") -> None:
        if self.recorder is None:
            return
        recording = self.recorder.start(live.call_id, now=self._clock.now(), day=self._clock.wall(), label=label)
        recording.attach(live.bridge, self._clock.now)
        live.recording = recording
        self.journey.step(live.call_id, "recording_started", {"path": str(recording.path)})
        log.info("recording_started", path=str(recording.path))

    def stop(self, live: LiveBridge) -> None:
        recording = live.recording
        if recording is None:
            return
        summary = recording.stop(self._clock.now())
        self.journey.step(live.call_id, "recording_stopped", {
            "path": summary.path, "duration_s": summary.duration_s,
            "pauses": [list(p) for p in summary.pauses], "dropped_frames": summary.dropped_frames,
        })
        log.info("recording_stopped", path=summary.path, duration_s=summary.duration_s, pauses=len(summary.pauses))

    def pause(self, call_id: str) -> Recording | None:
        """Pause the call's recording; None when the call has no live recording."""
        return self._switch(call_id, pause=True)

    def resume(self, call_id: str) -> Recording | None:
        return self._switch(call_id, pause=False)

    def _switch(self, call_id: str, *, pause: bool) -> Recording | None:
        live = self.bridges.get(call_id)
        recording = live.recording if live is not None else None
        if recording is None or recording.stopped:
            return None
        now = self._clock.now()
        changed = recording.pause(now) if pause else recording.resume(now)
        if changed:
            kind = "recording_paused" if pause else "recording_resumed"
            self.journey.step(call_id, kind, {"at_s": recording.offset_s(now)})
            log.info(kind, at_s=recording.offset_s(now))
        return recording


@runtime_checkable
class BridgingLeg(Protocol):
    """A leg that tells who watches it when it bridges (`SipMediaLeg.on_bridged`)."""

    def on_bridged(self, watcher: BridgeWatcher) -> Callable[[], None]: ...


class RecordedQueues:
    """The engine's `QueueService`: the handoff, with recording and live-bridge bookkeeping around it."""

    def __init__(self, inner: QueueService, desk: RecordingDesk) -> None:
        self._inner = inner
        self._desk = desk

    async def serve(self, leg: MediaLeg, request: QueueRequest, *, caller: str) -> QueueResult:
        if not isinstance(leg, BridgingLeg):
            return await self._inner.serve(leg, request, caller=caller)
        desk = self._desk
        mode = desk.policy.mode_for(request.queue, request.recording)
        record = desk.recorder is not None and mode is not RecordingMode.NEVER
        if record and mode is RecordingMode.CONSENT:
            record = await self._announce(leg, request.dialect)
        bridges: list[LiveBridge] = []

        def bridged(bridge: Bridge, agent: MediaLeg) -> None:
            live = LiveBridge(leg.call_id, bridge, leg, agent)
            bridges.append(live)
            desk.bridges.add(live)
            if record:  # a later bridge in the same call (a transfer) gets its own file: <call>-2.wav
                desk.start(live, label=str(len(bridges)) if len(bridges) > 1 else "")

        unwatch = leg.on_bridged(bridged)
        try:
            return await self._inner.serve(leg, request, caller=caller)
        finally:
            unwatch()
            for live in bridges:
                desk.stop(live)
                desk.bridges.remove(live)

    async def _announce(self, leg: MediaLeg, dialect: str) -> bool:
        """Tell the caller the call is recorded; False (do not record) if the announcement cannot play."""
        try:
            await leg.play([Prompt(CONSENT_PROMPT, "", dialect)])
        except CallEnded:
            raise
        except (IvrError, OSError) as exc:  # no such prompt in the flow, TTS failed: no consent, no recording
            log.warning("recording_consent_unavailable", detail=str(exc))
            return False
        return True




def recording_desk(config: EngineConfig, queues: Mapping[str, RecordingMode | None], events: CallEvents,
                   clock: Clock) -> RecordingDesk:
    """The engine's desk from its settings (`recording_dir`, `recording_default`) and queues.yaml."""
    recorder = Recorder(config.recording_dir) if config.recording_dir is not None else None
    policy = RecordingPolicy(RecordingMode(config.recording_default),
                             {queue: mode for queue, mode in queues.items() if mode is not None})
    return RecordingDesk(recorder, policy, CallBridges(), EngineJourney(events, clock), clock)


__all__ = ["CallBridges", "EngineJourney", "LiveBridge", "RecordedQueues", "RecordingDesk", "recording_desk"]
