"""Outbound calls through the engine: the campaign scheduler's attempts dialled over the trunk, answering
machines told from people, and the campaign's flow run for a person with the target's variables.

    outbound = start_outbound(engine)            # None when no campaigns_dir is configured
    engine-side: spawn outbound.run(engine.stopping); push outbound.aclose

One task per attempt: INVITE through `SipLegs.dial` (the no-answer timer CANCELs), a final failure
mapped to a `Result` (busy, rejected, no answer, failed), on answer the AMD over the first seconds of
the callee's audio, then the flow as for an inbound call (same interpreter, events, store, ACD: a
"press 0" reaches a human through the same queues). The attempt's end goes back to the scheduler,
which persists it and decides the retry. Every attempt is a call record with `direction=outbound` and
`campaign`, `attempt_id` and `target_id` in its variables: an answered one is its flow's record, one that
ran no flow (busy, no answer, a machine...) gets a record of its own with the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import CallEnded
from ivr.clock import Clock
from ivr.config import URL_SCHEMES, EngineConfig
from ivr.engine.dialer import DialFailed, SipLegs
from ivr.engine.ears import Ears
from ivr.engine.events import CallAnswered, CallEvents, CallFinished
from ivr.engine.handoff import QueueService
from ivr.engine.legs import SipMediaLeg
from ivr.engine.recordings import EngineJourney
from ivr.engine.sipcall import SipCall
from ivr.errors import ConfigError
from ivr.flow import Flow, Interpreter
from ivr.flow.expr import Value
from ivr.journey import CallRecord, Direction, JourneyEvent
from ivr.outbound.amd import AmdConfig, AmdDecision, AmdDetector, AmdVerdict
from ivr.outbound.loader import Campaign, check_campaign
from ivr.outbound.model import OnMachine, Result
from ivr.outbound.results import result_for_status
from ivr.outbound.scheduler import INTERRUPTED, Dial, Scheduler
from ivr.outbound.state import CampaignStore, SqlCampaignState
from ivr.outbound.targets import read_do_not_call, read_targets_csv
from ivr.recording import Recorder, Recording

if TYPE_CHECKING:
    from ivr.engine.app import Engine

log = structlog.get_logger(__name__)

SHARED_POLL_S = 1.0
"""With a state shared by nodes: how often a node checks the lead and reads back what others changed
(targets added through another node's API are dialled within about this long)."""
BEEP_WAIT_S = 15.0
"""On a machine with leave_message: wait this long for the beep, then leave the message anyway."""


@dataclass(slots=True, frozen=True)
class AttemptEnd:
    result: Result
    result_code: str | None
    sip_status: int | None = None
    amd: AmdDecision | None = None
    beep_at_ms: int | None = None
    """On a machine with leave_message: when the beep was heard (audio time since answer); the message
    started right after it (None: no beep within BEEP_WAIT_S, the message was left anyway)."""


async def detect_machine(leg: SipMediaLeg, config: AmdConfig, clock: Clock) -> tuple[AmdDecision, AmdDetector]:
    """Run the AMD over the callee's first seconds; no audio at all counts as silence (dead air)."""
    detector = AmdDetector(config)
    settled = asyncio.Event()
    """Set by a decision or by the call ending, whichever comes first."""

    def hear(frame: NDArray[np.int16]) -> None:
        if detector.feed(frame) is not None:
            settled.set()

    async def until_ended() -> None:
        await leg.wait_ended()
        settled.set()

    stop = leg.add_audio_consumer(hear)
    watcher = asyncio.ensure_future(until_ended())
    try:
        async with clock.timeout(config.total_analysis_ms / 1000 + 0.5):
            await settled.wait()
    except TimeoutError:
        pass
    finally:
        stop()
        watcher.cancel()
    if detector.decision is not None:
        return detector.decision, detector
    if leg.ended:
        raise CallEnded(f"call {leg.call_id} ended during answering-machine detection")
    # No frames arrived at all (no RTP): as app_amd, initial silence → machine.
    silent = np.zeros(160, dtype=np.int16)
    while (decision := detector.feed(silent)) is None:
        pass
    return decision, detector


class OutboundCalls:
    """Runs the scheduler: places due attempts, reports how each ended."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        legs: SipLegs,
        flows: Callable[[str], Flow | None],
        interpreter: Interpreter,
        ears: Callable[[], Ears | None],
        queues: QueueService | None,
        events: CallEvents,
        flow_variables: Mapping[str, Value],
        clock: Clock,
        amd: AmdConfig | None = None,
        draining: Callable[[], bool] = lambda: False,
        recorder: Recorder | None = None,
        journey: EngineJourney | None = None,
    ) -> None:
        """`draining`: the engine is draining (OPTIONS and /readyz answer 503): place no new call, let
        the calls in progress finish (the engine's drain waits for `in_progress`)."""
        self.scheduler = scheduler
        self._legs = legs
        self._flows = flows
        self._interpreter = interpreter
        self._ears = ears
        self._queues = queues
        self._events = events
        self._flow_variables = dict(flow_variables)
        self._clock = clock
        self._amd = amd or AmdConfig()
        self._draining = draining
        self._recorder = recorder
        """Consent recordings (campaign `record_consent`); None when the engine records no calls."""
        self._journey = journey
        self._wake = asyncio.Event()
        self.leading = False
        self._flow_records: set[str] = set()
        """Attempts (by `Dial.call_id`) whose flow made their call record; only attempts in progress."""
        """This node dials (always, with a state of its own; one node at a time with a shared one)."""
        self.in_progress: set[asyncio.Task[None]] = set()
        self.ended: list[tuple[Dial, AttemptEnd]] = []
        """Every attempt's end, in order (kept for tests and the status API's recent list)."""

    def wake(self) -> None:
        """Decide again now (targets added, a campaign resumed)."""
        self._wake.set()

    def wall(self) -> datetime:
        return self._clock.wall()

    async def run(self, stop: asyncio.Event) -> None:
        store = self.scheduler.store
        while not stop.is_set():
            if self._draining():
                # Draining is for good (the node is going away): targets still due stay pending in the
                # campaign state, for this node after a restart or for another node sharing it.
                log.info("outbound_draining", in_progress=len(self.in_progress))
                await stop.wait()
                return
            # The campaign state's queries run off the loop (issue 22): a slow database holds no call's media.
            # A wake-up that comes while they run (targets added, an attempt ended) is kept for the wait below.
            self._wake.clear()
            self.leading = await asyncio.to_thread(self._follow_the_lead, self.leading) if store.shared else True
            while self.leading and (dial := await self._next_dial()):
                task = asyncio.get_running_loop().create_task(self._attempt(dial), name=f"outbound-{dial.call_id}")
                self.in_progress.add(task)
                task.add_done_callback(self.in_progress.discard)
            wait = await asyncio.to_thread(self.scheduler.next_wakeup, self._clock.wall(), self._clock.now()) \
                if self.leading else None
            longest = SHARED_POLL_S if store.shared else 60.0
            try:
                async with self._clock.timeout(min(wait, longest) if wait is not None else longest):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _follow_the_lead(self, leading: bool) -> bool:
        """A shared state: take or keep the lead, and read back what other nodes changed."""
        now_leading = self.scheduler.store.lead()
        if now_leading and not leading:
            log.info("outbound_leading")
            self.scheduler.take_over()
        elif leading and not now_leading:
            log.warning("outbound_not_leading", in_progress=len(self.in_progress))
        else:
            self.scheduler.refresh(full=not now_leading)
        return now_leading

    async def _next_dial(self) -> Dial | None:
        if self._draining():
            return None
        wall, now = self._clock.wall(), self._clock.now()
        return await asyncio.to_thread(self.scheduler.next_dial, wall, now, uuid.uuid4().hex)

    async def _attempt(self, dial: Dial) -> None:
        log.info("outbound_dial", campaign=dial.campaign, target=dial.target.target_id, attempt=dial.attempt,
                 number=dial.target.number)
        started = self._clock.wall()
        try:
            end = await self.attempt(dial)
        except Exception:  # noqa: BLE001 - one attempt failing must not stop the campaign
            log.exception("outbound_attempt_failed", campaign=dial.campaign, target=dial.target.target_id)
            end = AttemptEnd(Result.FAILED, None)
        except asyncio.CancelledError:
            end = AttemptEnd(Result.FAILED, INTERRUPTED)
            await self._finish(dial, end, started)
            raise
        await self._finish(dial, end, started)

    async def _finish(self, dial: Dial, end: AttemptEnd, started: datetime) -> None:
        if dial.call_id not in self._flow_records:
            self._record_attempt(dial, end, started)
        self._flow_records.discard(dial.call_id)
        state = await asyncio.to_thread(self.scheduler.finished, dial, end.result, end.result_code, self._clock.wall())
        self.ended.append((dial, end))
        log.info("outbound_attempt_ended", campaign=dial.campaign, target=dial.target.target_id,
                 attempt=dial.attempt, result=end.result.value, code=end.result_code, status=end.sip_status,
                 next=state.status.value)
        self.wake()

    def _record_attempt(self, dial: Dial, end: AttemptEnd, started: datetime) -> None:
        """An attempt that ran no flow (busy, no answer, declined, failed, a machine left no message, a
        callee gone during the AMD) is a call record too, as every inbound call is: direction outbound,
        how it ended in its variables and its one journey step."""
        now = self._clock.wall()
        outcome: dict[str, str] = {"result": end.result.value, "result_code": end.result_code or "",
                                   "sip_status": str(end.sip_status or "")}
        if end.amd is not None:
            outcome |= {"amd": end.amd.verdict.value, "amd_reason": end.amd.reason.value}
        record = CallRecord(
            call_id=dial.call_id, caller=dial.target.number, dialed=dial.caller_id or "outbound", started_at=started,
            flow_id=dial.flow, ended_at=now, direction=Direction.OUTBOUND,
            variables={"campaign": dial.campaign, "target_id": dial.target.target_id, "attempt_id": dial.call_id,
                       "attempt": str(dial.attempt), **outcome},
        )
        self._events.call_started(record)
        self._events.journey_event(JourneyEvent(dial.call_id, 0, now, "", "outbound_attempt", dict(outcome)))
        self._events.call_finished(record)

    async def attempt(self, dial: Dial) -> AttemptEnd:
        campaign = self.scheduler.campaign(dial.campaign).spec
        headers = [("X-IVR-Campaign", dial.campaign)]
        try:
            leg = await self._legs.dial(dial.uri, timeout_s=dial.no_answer_s, label=dial.call_id, headers=headers)
        except DialFailed as exc:
            return AttemptEnd(result_for_status(exc.status, timed_out=exc.timed_out), None, exc.status)
        try:
            decision: AmdDecision | None = None
            if campaign.amd:
                decision, detector = await detect_machine(leg, self._amd, self._clock)
                log.info("outbound_amd", campaign=dial.campaign, verdict=decision.verdict.value,
                         reason=decision.reason.value, at_ms=decision.at_ms)
                if decision.verdict is AmdVerdict.MACHINE:
                    if campaign.on_machine is OnMachine.LEAVE_MESSAGE and campaign.machine_flow:
                        await self._wait_for_beep(leg, detector)
                        await self._run_flow(campaign.machine_flow, dial, leg, campaign.result_variable)
                    return AttemptEnd(Result.MACHINE, None, 200, decision, detector.beep_at_ms)
            code = await self._run_flow(dial.flow, dial, leg, campaign.result_variable,
                                        record_consent=campaign.record_consent)
            return AttemptEnd(Result.ANSWERED if code else Result.INCOMPLETE, code, 200, decision)
        except CallEnded:
            return AttemptEnd(Result.INCOMPLETE, None, 200)
        finally:
            if not leg.ended:
                await leg.hangup()
            await leg.aclose()

    async def _wait_for_beep(self, leg: SipMediaLeg, detector: AmdDetector) -> None:
        if detector.beep_at_ms is not None:
            return
        heard = asyncio.Event()

        def hear(frame: NDArray[np.int16]) -> None:
            detector.feed(frame)
            if detector.beep_at_ms is not None:
                heard.set()

        stop = leg.add_audio_consumer(hear)
        try:
            async with self._clock.timeout(BEEP_WAIT_S):
                await heard.wait()
        except TimeoutError:
            pass
        finally:
            stop()

    async def _run_flow(self, flow_id: str, dial: Dial, leg: SipMediaLeg, result_variable: str, *,
                        record_consent: bool = False) -> str | None:
        flow = self._flows(flow_id)
        if flow is None:
            log.error("outbound_flow_missing", flow=flow_id, campaign=dial.campaign)
            return None
        call = SipCall(leg=leg, caller=dial.target.number, dialed=dial.caller_id or "outbound",
                       ears=self._ears(), queues=self._queues, clock=self._clock)
        variables: dict[str, Value] = {**self._flow_variables, **dial.variables, "direction": "outbound",
                                       "attempt_id": dial.call_id, "target_id": dial.target.target_id}
        dialect = str(variables.get("dialect") or flow.spec.default_dialect)
        self._flow_records.add(dial.call_id)  # the flow's own record stands for the attempt
        consent = self._record_consent(leg) if record_consent else None
        if consent is not None:
            variables["consent_recording"] = str(consent[0].path)
        self._events.emit(CallAnswered(call.call_id, call.caller, call.dialed, flow.id, dialect, self._clock.wall()))
        try:
            record = await self._interpreter.run(flow, call, variables=variables, direction=Direction.OUTBOUND)
        finally:
            if consent is not None:
                self._stop_recording(leg.call_id, *consent)
            self._events.emit(CallFinished(call.call_id))
        return record.variables.get(result_variable) or None

    def _record_consent(self, leg: SipMediaLeg) -> tuple[Recording, Callable[[], None]] | None:
        """Record the callee's side (mono) while the flow runs: what they say to the consent question."""
        if self._recorder is None:
            return None
        recording = self._recorder.start(leg.call_id, now=self._clock.now(), day=self._clock.wall(), label="consent")
        stop = leg.add_audio_consumer(lambda frame: recording.add_pcm(0, frame, self._clock.now()))
        return recording, stop

    def _stop_recording(self, call_id: str, recording: Recording, stop_feed: Callable[[], None]) -> None:
        stop_feed()
        summary = recording.stop(self._clock.now())
        log.info("outbound_consent_recorded", path=summary.path, duration_s=summary.duration_s,
                 dropped_frames=summary.dropped_frames)
        if self._journey is not None:
            self._journey.step(call_id, "recording_stopped", {"path": summary.path, "duration_s": summary.duration_s,
                                                              "pauses": [], "label": "consent"})

    async def aclose(self) -> None:
        """Stop the attempts in progress (each is recorded as failed/interrupted) and close the state."""
        for task in list(self.in_progress):
            task.cancel()
        await asyncio.gather(*self.in_progress, return_exceptions=True)
        self.scheduler.store.close()


def load_campaigns(folder: Path, flow_exists: Callable[[str], bool]) -> list[Campaign]:
    """Every campaigns/*.yaml that loads; a refused file is logged with its problems and skipped."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        result = check_campaign(path, flow_exists=flow_exists)
        if result.campaign is None:
            for problem in result.problems:
                log.error("campaign_refused", problem=str(problem))
            continue
        out.append(result.campaign)
    return out


def open_campaign_state(db: str, outbound_db: Path) -> SqlCampaignState:
    """The campaigns' state: in PostgreSQL when the engine's records are (`db: postgresql://...`: shared by
    the nodes of a cluster), else in its own SQLite file `outbound_db`."""
    if db.startswith(URL_SCHEMES):
        from ivr.outbound.pgstate import PostgresCampaignStore

        return PostgresCampaignStore(db)
    return CampaignStore(outbound_db)


def open_scheduler(campaigns: list[Campaign], store: SqlCampaignState, wall_now: Callable[[], datetime],
                   flows_known: Callable[[str], bool] | None = None) -> Scheduler:
    """A scheduler over `campaigns`, their CSV targets imported once (ids already stored are kept)."""
    scheduler = Scheduler(store, flows_known=flows_known)
    for campaign in campaigns:
        dnc_file = campaign.do_not_call_file
        numbers = read_do_not_call(dnc_file.read_text(encoding="utf-8").splitlines()) if dnc_file else frozenset()
        scheduler.add_campaign(campaign, do_not_call=numbers)
        if campaign.targets_file is not None:
            scheduler.add_targets(campaign.id, read_targets_csv(campaign.targets_file), wall_now())
    return scheduler


def start_outbound(engine: Engine, flow_variables: Mapping[str, Value] | None = None) -> OutboundCalls | None:
    """The engine's outbound part, or None when `campaigns_dir` is not configured."""
    cfg = engine.config
    folder = cfg.campaigns_dir
    if folder is None:
        return None

    def flow_by_id(flow_id: str) -> Flow | None:
        return next((f for f in engine.registry.flows() if f.id == flow_id), None)

    def known(name: str) -> bool:
        return flow_by_id(name) is not None

    campaigns = load_campaigns(Path(folder), known)
    scheduler = open_scheduler(campaigns, open_campaign_state(cfg.db, Path(cfg.outbound_db)), engine.clock.wall, known)
    log.info("outbound_ready", campaigns=[c.id for c in campaigns])
    return OutboundCalls(
        scheduler=scheduler, legs=engine.legs, flows=flow_by_id, interpreter=engine.interpreter,
        ears=lambda: Ears(engine.decode_pool, engine.speech_models, engine.clock),
        queues=engine.recordings.queues(engine.handoff),  # a human reached from a campaign: as inbound calls
        events=engine.events, flow_variables=flow_variables or {}, clock=engine.clock,
        draining=lambda: any(ua.draining for ua in engine.uas),
        recorder=engine.recordings.desk.recorder, journey=engine.recordings.desk.journey,
    )


@contextlib.asynccontextmanager
async def running_with_outbound(config: EngineConfig) -> AsyncIterator[tuple[Engine, OutboundCalls]]:
    """An engine started in this process with its outbound part (config `campaigns_dir`), closed on exit;
    for tests and benchmarks. `Engine.start` builds and runs the outbound part itself."""
    from ivr.engine.app import Engine

    engine = Engine(config)
    try:
        await engine.start()
        if engine.outbound is None:
            raise ConfigError("running_with_outbound needs campaigns_dir in the config")
        yield engine, engine.outbound
    finally:
        await engine.close()


__all__ = [
    "AttemptEnd", "OutboundCalls", "detect_machine", "load_campaigns", "open_campaign_state", "open_scheduler",
    "running_with_outbound",
    "start_outbound",
]
