"""Supervisors on live calls: listen (hears both), whisper (only the agent hears them), barge (both do).

A supervisor joins a caller-agent bridge (`CallBridges`) as its third party (`Bridge.join`): by API
(`POST /api/calls/{id}/supervise`), where the engine calls the supervisor's registered phone, or by
dialling a feature code from that phone (`*31<agent>` listen, `*32<agent>` whisper, `*33<agent>`
barge; the agents' feature-code router answers and hands us the leg). While joined, keys on the
supervisor's phone switch the mode (1 listen, 2 whisper, 3 barge). It ends when the supervisor hangs
up or the call ends; joining and leaving are steps of the call's journey.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from ivr.acd import Acd
from ivr.clock import Clock
from ivr.config import EngineConfig
from ivr.engine.dialer import Dialer, DialFailed
from ivr.engine.events import CallEvents
from ivr.engine.featurecodes import FeatureCall, FeatureCodes, FeatureRefused
from ivr.engine.handoff import QueueService
from ivr.engine.legs import MediaLeg, SipMediaLeg
from ivr.engine.recordings import (
    CallBridges,
    EngineJourney,
    LiveBridge,
    RecordedQueues,
    RecordingDesk,
    recording_desk,
)
from ivr.errors import IvrError
from ivr.media.bridge import SupervisorMode
from ivr.recording import Recording
from ivr.recording.retention import purge_recordings
from ivr.web.live import LiveState

log = structlog.get_logger(__name__)

SUPERVISOR_RING_TIMEOUT_S = 30.0
MODE_KEYS = {"1": SupervisorMode.LISTEN, "2": SupervisorMode.WHISPER, "3": SupervisorMode.BARGE}
FEATURE_CODES = {"*31": SupervisorMode.LISTEN, "*32": SupervisorMode.WHISPER, "*33": SupervisorMode.BARGE}


class SupervisionRefused(IvrError):
    """A supervision request that cannot be served; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Supervision:
    """Joins supervisors to live bridges."""

    def __init__(
        self,
        bridges: CallBridges,
        journey: EngineJourney,
        clock: Clock,
        *,
        dialer: Dialer | None = None,
        contact_of: Callable[[str], str | None] = lambda _: None,
        call_of_agent: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        """`contact_of(supervisor)`: where the supervisor's phone is registered (None: not registered);
        `call_of_agent(agent_id)`: the call an agent is on (for feature codes)."""
        self._bridges = bridges
        self._journey = journey
        self._clock = clock
        self._dialer = dialer
        self._contact_of = contact_of
        self._call_of_agent = call_of_agent
        self._tasks: set[asyncio.Task[None]] = set()

    def live(self, call_id: str) -> LiveBridge:
        live = self._bridges.get(call_id)
        if live is None:
            raise SupervisionRefused(f"call {call_id!r} is not bridged to an agent on this engine", 404)
        return live

    # -- by API -----------------------------------------------------------------------------------

    def start(self, call_id: str, mode: SupervisorMode, supervisor: str) -> None:
        """Call `supervisor`'s phone and join them to the call in `mode` once they answer (in the
        background). If they already supervise it, switch the mode at once."""
        live = self.live(call_id)
        if live.supervisor is not None:
            if live.supervisor != supervisor:
                raise SupervisionRefused(f"call {call_id!r} is already supervised by {live.supervisor!r}", 409)
            third = live.bridge.third
            if third is not None:
                live.bridge.join(third, mode)
                self._journey.step(call_id, "supervisor_mode", {"supervisor": supervisor, "mode": mode.value})
            return
        contact = self._contact_of(supervisor)
        if contact is None or self._dialer is None:
            raise SupervisionRefused(f"supervisor {supervisor!r} has no registered phone", 409)
        live.supervisor = supervisor
        task = asyncio.get_running_loop().create_task(self._dial_and_join(live, contact, mode, supervisor),
                                                      name=f"supervise-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial_and_join(self, live: LiveBridge, contact: str, mode: SupervisorMode, supervisor: str) -> None:
        assert self._dialer is not None
        try:
            leg = await self._dialer.dial(contact, timeout_s=SUPERVISOR_RING_TIMEOUT_S,
                                          label=f"{live.call_id}-supervisor")
        except DialFailed as exc:
            live.supervisor = None
            log.info("supervisor_not_answering", supervisor=supervisor, status=exc.status)
            return
        try:
            await self.run(live, leg, mode, supervisor)
        finally:
            await leg.aclose()

    # -- by feature code --------------------------------------------------------------------------

    def register(self, codes: FeatureCodes) -> None:
        """Register `*31`/`*32`/`*33` + agent id with the agents' feature-code router."""
        for code, mode in FEATURE_CODES.items():
            codes.register(code, self._feature(mode), argument=True, supervisor=True,
                           description=f"supervisor {mode.value}")

    def _feature(self, mode: SupervisorMode) -> Callable[[FeatureCall], Awaitable[str | None]]:
        async def handler(call: FeatureCall) -> str | None:
            call_id = self._call_of_agent(call.argument)
            live = self._bridges.get(call_id) if call_id else None
            if live is None:
                raise FeatureRefused(f"agent {call.argument!r} is not on a call")
            if live.supervisor is not None:
                raise FeatureRefused(f"agent {call.argument!r}'s call is already supervised")
            live.supervisor = call.user
            await self.run(live, call.leg, mode, call.user)
            return None

        return handler

    # -- while joined -----------------------------------------------------------------------------

    async def run(self, live: LiveBridge, leg: MediaLeg, mode: SupervisorMode, supervisor: str) -> None:
        """Keep `leg` on the call in `mode` (keys 1/2/3 switch) until either hangs up."""
        if not isinstance(leg, SipMediaLeg):
            raise TypeError(f"cannot supervise with {type(leg).__name__}")
        bridge = live.bridge
        live.supervisor = supervisor
        keys: asyncio.Queue[str] = asyncio.Queue()
        try:
            bridge.join(leg.media.bridging.leg, mode)
            self._journey.step(live.call_id, "supervisor_joined", {"supervisor": supervisor, "mode": mode.value})
            log.info("supervisor_joined", call_id=live.call_id, supervisor=supervisor, mode=mode.value)
            with leg.take_keys(keys.put_nowait):
                await self._until_over(live, leg, keys, supervisor)
        finally:
            if bridge.third is leg.media.bridging.leg:
                bridge.leave()
            live.supervisor = None
            self._journey.step(live.call_id, "supervisor_left", {"supervisor": supervisor})
            log.info("supervisor_left", call_id=live.call_id, supervisor=supervisor)

    async def _until_over(self, live: LiveBridge, leg: SipMediaLeg, keys: asyncio.Queue[str], supervisor: str) -> None:
        ends = [asyncio.ensure_future(x.wait_ended()) for x in (leg, live.caller, live.agent)]
        try:
            while True:
                key = asyncio.ensure_future(keys.get())
                done, _ = await asyncio.wait([*ends, key], return_when=asyncio.FIRST_COMPLETED)
                if key not in done:
                    key.cancel()
                    return
                mode = MODE_KEYS.get(key.result())
                if mode is not None and live.bridge.open and live.bridge.mode is not mode:
                    live.bridge.join(leg.media.bridging.leg, mode)
                    self._journey.step(live.call_id, "supervisor_mode", {"supervisor": supervisor, "mode": mode.value})
        finally:
            for end in ends:
                end.cancel()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class RecordingsApi:
    """The web routes' `RecordingControl`: the recording desk and supervision, side by side."""

    def __init__(self, desk: RecordingDesk, supervision: Supervision) -> None:
        self._desk = desk
        self._supervision = supervision

    @property
    def directory(self) -> pathlib.Path | None:
        return self._desk.directory

    def pause(self, call_id: str) -> Recording | None:
        return self._desk.pause(call_id)

    def resume(self, call_id: str) -> Recording | None:
        return self._desk.resume(call_id)

    def supervise(self, call_id: str, mode: SupervisorMode, supervisor: str) -> tuple[int, str] | None:
        try:
            self._supervision.start(call_id, mode, supervisor)
        except SupervisionRefused as exc:
            return exc.status, str(exc)
        return None


class RecordingParts:
    """Recording and supervision as the engine builds, wires and closes them."""

    def __init__(self, config: EngineConfig, acd: Acd | None, live: LiveState, dialer: Dialer, events: CallEvents,
                 clock: Clock) -> None:
        queues = {q.queue_id: q.recording for q in acd.config.queues.values()} if acd is not None else {}
        self.desk = recording_desk(config, queues, events, clock)

        def contact_of(supervisor: str) -> str | None:
            if acd is None or supervisor not in acd.config.agents:
                return None
            return acd.agent(supervisor).contact or None

        def call_of_agent(agent_id: str) -> str | None:
            current = live.current_call(agent_id, clock.wall())
            return current.call_id if current is not None else None

        self.supervision = Supervision(self.desk.bridges, self.desk.journey, clock, dialer=dialer,
                                       contact_of=contact_of, call_of_agent=call_of_agent)
        self.api = RecordingsApi(self.desk, self.supervision)

    def queues(self, inner: QueueService | None) -> QueueService | None:
        """The queue service calls use: `inner` (the handoff) with recording around it."""
        return RecordedQueues(inner, self.desk) if inner is not None else None

    def purgers(self) -> list[Callable[[datetime], int]]:
        """For the retention purge: recordings go with the calls."""
        directory = self.desk.directory
        return [functools.partial(purge_recordings, directory)] if directory is not None else []

    async def aclose(self) -> None:
        await self.supervision.aclose()
        if self.desk.recorder is not None:
            await asyncio.to_thread(self.desk.recorder.close)


__all__ = ["FEATURE_CODES", "MODE_KEYS", "RecordingParts", "RecordingsApi", "Supervision", "SupervisionRefused"]
