"""Which target to dial next, given `now`: campaigns, windows, pacing, retries, do-not-call, priority.

Pure decisions over in-memory state; every change is written through `CampaignStore` before it
matters (an attempt is committed before its INVITE). Two clocks are passed in: `wall` (aware
datetime, for windows and retry times, which survive a restart) and `mono` (seconds, for pacing).

    scheduler = Scheduler(store)
    scheduler.add_campaign(campaign, do_not_call=numbers)
    dial = scheduler.next_dial(wall, mono, call_id="...")   # None: nothing may start now
    ...place the call...
    scheduler.finished(dial, Result.BUSY, None, wall)
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import structlog

from ivr.outbound.loader import Campaign
from ivr.outbound.model import OnMachine, Result
from ivr.outbound.pacing import Pacer
from ivr.outbound.state import AttemptTaken, SqlCampaignState, Status, TargetState
from ivr.outbound.targets import Target
from ivr.outbound.window import is_open, next_open

log = structlog.get_logger(__name__)

DO_NOT_CALL = "do_not_call"
"""Result code of a target found on the do-not-call list at dial time (never dialled)."""
INTERRUPTED = "interrupted"
"""Result code of an attempt a restart or shutdown cut short: the target is due again at once with the
next attempt number (the callee did nothing wrong: no retry rule applies; the cut attempt is never redialled)."""
MESSAGE_LEFT = "message_left"
NO_WINDOW = "no_window"
"""Result code of a target whose windows never open again (e.g. all days are holidays)."""


@dataclass(slots=True, frozen=True)
class Dial:
    """One attempt to start now."""

    campaign: str
    target: Target
    attempt: int
    call_id: str
    uri: str
    variables: Mapping[str, str]
    caller_id: str | None
    no_answer_s: float
    flow: str


@dataclass(slots=True)
class _Running:
    campaign: Campaign
    dnc: frozenset[str]
    targets: dict[str, TargetState] = field(default_factory=dict)


def trunk_key(template: str) -> str:
    """Campaigns on the same trunk (host part of the URI template) share its pacing."""
    return template.rsplit("@", 1)[-1] if "@" in template else template


@dataclass(slots=True, frozen=True)
class Progress:
    campaign: str
    paused: bool
    targets: int
    attempted: int
    completed: int
    """Finished with a completing result code and no human."""
    done: int
    by_code: Mapping[str, int]

    @property
    def completion_rate(self) -> float:
        """Completed without a human / targets: the "replacement rate"."""
        return self.completed / self.targets if self.targets else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "campaign": self.campaign, "paused": self.paused, "targets": self.targets,
            "attempted": self.attempted, "completed": self.completed, "done": self.done,
            "completion_rate": round(self.completion_rate, 4), "results": dict(self.by_code),
        }


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _serialized(method: Callable[Concatenate[Scheduler, _P], _R]) -> Callable[Concatenate[Scheduler, _P], _R]:
    """One thread at a time: the engine runs the steps that query the campaign state on worker threads, off
    the event loop (issue 22), while the API reads and changes the same campaigns from the loop."""

    def serialized(self: Scheduler, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(serialized, method)
    return serialized


class Scheduler:
    """Which attempt to dial next, and what an ended attempt means for its target. Methods that query or
    change the campaign state may block on the database: the engine calls them off the event loop."""

    def __init__(self, store: SqlCampaignState, *, flows_known: Callable[[str], bool] | None = None) -> None:
        self.store = store
        self._lock = threading.RLock()
        self.flows_known = flows_known
        """Whether a flow id is loaded (an API call naming its own flow is checked against it)."""
        self._campaigns: dict[str, _Running] = {}
        self._pacers: dict[str, Pacer] = {}
        self._paused: set[str] = set(store.paused())
        self._seen_seq = 0
        """The newest target `refresh` has read back (targets other nodes add arrive after it)."""

    # -- campaigns and targets --------------------------------------------------------------

    @_serialized
    def add_campaign(self, campaign: Campaign, *, do_not_call: Iterable[str] = ()) -> None:
        """Start (or resume after a restart) a campaign: its stored targets are read back. Attempts a
        crash left open are closed as interrupted (due again at once, with the next attempt number) here
        for a state of our own, by `take_over` when the state is shared (another node may be dialling)."""
        running = _Running(campaign, frozenset(do_not_call))
        self._campaigns[campaign.id] = running
        key = trunk_key(campaign.spec.trunk)
        pacing = campaign.spec.pacing
        old = self._pacers.get(key)
        if old is None or old.interval < 1.0 / pacing.calls_per_s or old.max_concurrent > pacing.max_concurrent:
            self._pacers[key] = Pacer(pacing.calls_per_s, pacing.max_concurrent)
        for state in self.store.targets(campaign.id):
            running.targets[state.target.target_id] = state
            self._seen_seq = max(self._seen_seq, state.seq)
        if not self.store.shared:
            self._close_left_open(running)

    def _close_left_open(self, running: _Running) -> None:
        for state in running.targets.values():
            if state.status is Status.DIALING and not state.ours:
                log.warning("outbound_attempt_interrupted", campaign=running.campaign.id,
                            target=state.target.target_id, attempt=state.attempts)
                self._settle(running, state, Result.FAILED, INTERRUPTED, state.next_at)  # due again at once

    @_serialized
    def take_over(self) -> None:
        """This node has just taken the lead of a shared state: read it all back and close the attempts
        the last leader left open (it stopped or died; its calls went with it)."""
        self.refresh(full=True)
        for running in self._campaigns.values():
            self._close_left_open(running)

    @_serialized
    def refresh(self, *, full: bool = False) -> None:
        """Read back what other nodes changed in a shared state: pauses, and targets added through their
        API (`full`: every target, e.g. their results, for a node that does not dial). An attempt this
        node is dialling keeps its in-memory state."""
        self._paused = set(self.store.paused())
        for state in self.store.targets(after_seq=0 if full else self._seen_seq):
            self._seen_seq = max(self._seen_seq, state.seq)
            running = self._campaigns.get(state.campaign)
            if running is None:
                continue
            mine = running.targets.get(state.target.target_id)
            if mine is not None and mine.ours and mine.status is Status.DIALING:
                continue
            running.targets[state.target.target_id] = state

    @_serialized
    def set_do_not_call(self, campaign_id: str, numbers: Iterable[str]) -> None:
        self._campaigns[campaign_id].dnc = frozenset(numbers)

    @_serialized
    def add_targets(self, campaign_id: str, targets: Iterable[Target], not_before: dt.datetime) -> int:
        running = self._campaigns[campaign_id]
        added = self.store.add_targets(campaign_id, targets, not_before)
        for state in added:
            running.targets[state.target.target_id] = state
        return len(added)

    def campaign(self, campaign_id: str) -> Campaign:
        return self._campaigns[campaign_id].campaign

    def campaigns(self) -> list[Campaign]:
        return [r.campaign for r in self._campaigns.values()]

    def target(self, campaign_id: str, target_id: str) -> TargetState | None:
        return self._campaigns[campaign_id].targets.get(target_id)

    @_serialized
    def pause(self, campaign_id: str) -> None:
        self._campaigns[campaign_id]  # noqa: B018 - unknown campaign → KeyError
        self._paused.add(campaign_id)
        self.store.set_paused(campaign_id, True)

    @_serialized
    def resume(self, campaign_id: str) -> None:
        self._campaigns[campaign_id]  # noqa: B018
        self._paused.discard(campaign_id)
        self.store.set_paused(campaign_id, False)

    def is_paused(self, campaign_id: str) -> bool:
        return campaign_id in self._paused

    # -- deciding --------------------------------------------------------------------------

    def _zone(self, running: _Running, state: TargetState) -> str:
        return state.target.timezone or running.campaign.spec.timezone

    def _due(self, wall: dt.datetime) -> list[tuple[_Running, TargetState]]:
        due = [
            (running, state)
            for cid, running in self._campaigns.items() if cid not in self._paused
            for state in running.targets.values()
            if state.status is Status.PENDING and state.next_at <= wall
        ]
        due.sort(key=lambda rs: (-rs[0].campaign.spec.priority, -rs[1].target.priority, rs[1].next_at, rs[1].seq))
        return due

    @_serialized
    def next_dial(self, wall: dt.datetime, mono: float, call_id: str) -> Dial | None:
        """The attempt to start now, already committed as begun; None if nothing may start."""
        for running, state in self._due(wall):
            spec = running.campaign.spec
            pacer = self._pacers[trunk_key(spec.trunk)]
            if not pacer.may_start(mono):
                continue
            holidays = frozenset(spec.holidays)
            zone = self._zone(running, state)
            if not is_open(wall, zone, spec.windows, holidays):
                opens = next_open(wall, zone, spec.windows, holidays)
                if opens is None:
                    self._finish(state, Status.DONE, None, NO_WINDOW, wall)
                else:
                    state.next_at = opens  # in memory only: recomputed the same after a restart
                continue
            if state.target.number in running.dnc:
                log.info("outbound_do_not_call", campaign=spec.id, target=state.target.target_id)
                self._finish(state, Status.DONE, None, DO_NOT_CALL, wall)
                continue
            state.attempts += 1
            state.status = Status.DIALING
            try:
                self.store.begin_attempt(state, call_id, wall)
            except AttemptTaken:
                log.warning("outbound_attempt_taken", campaign=spec.id, target=state.target.target_id,
                            attempt=state.attempts)
                stored = self.store.target(spec.id, state.target.target_id)
                if stored is not None:
                    running.targets[state.target.target_id] = stored
                continue
            state.ours = True
            pacer.started(mono)
            return Dial(
                campaign=spec.id, target=state.target, attempt=state.attempts, call_id=call_id,
                uri=spec.trunk.replace("{number}", state.target.number),
                variables={**state.target.variables, "campaign": spec.id, "number": state.target.number},
                caller_id=spec.caller_id, no_answer_s=spec.no_answer_s, flow=state.target.flow or spec.flow,
            )
        return None

    @_serialized
    def next_wakeup(self, wall: dt.datetime, mono: float) -> float | None:
        """Seconds from now until a decision may change (a target due or a pacing slot), None if idle.
        An ended call also changes it: call `next_dial` again then."""
        waits: list[float] = []
        for cid, running in self._campaigns.items():
            if cid in self._paused:
                continue
            pending = [s.next_at for s in running.targets.values() if s.status is Status.PENDING]
            if not pending:
                continue
            slot = self._pacers[trunk_key(running.campaign.spec.trunk)].next_start(mono)
            if slot is None:
                continue
            waits.append(max(slot - mono, (min(pending) - wall).total_seconds(), 0.0))
        return min(waits) if waits else None

    # -- results ---------------------------------------------------------------------------

    @_serialized
    def finished(self, dial: Dial, result: Result, result_code: str | None, wall: dt.datetime) -> TargetState:
        """Record how an attempt ended and decide the target's next step (done or retry when)."""
        running = self._campaigns[dial.campaign]
        state = running.targets[dial.target.target_id]
        if state.status is not Status.DIALING or state.attempts != dial.attempt:
            raise ValueError(f"attempt {dial.attempt} of {dial.target.target_id} is not the one dialling")
        self._pacers[trunk_key(running.campaign.spec.trunk)].ended()
        state.ours = False
        self._settle(running, state, result, result_code, wall)
        return state

    def _settle(self, running: _Running, state: TargetState, result: Result,
                result_code: str | None, wall: dt.datetime) -> None:
        spec = running.campaign.spec
        if result_code == INTERRUPTED:
            state.next_at = wall
            self._finish(state, Status.PENDING, result, result_code, wall, closes_attempt=True)
            return
        if result is Result.MACHINE and spec.on_machine is not OnMachine.RETRY:
            code = MESSAGE_LEFT if spec.on_machine is OnMachine.LEAVE_MESSAGE else result_code
            self._finish(state, Status.DONE, result, code, wall, closes_attempt=True)
            return
        rule = spec.retry.rule(result)
        if rule is not None and state.attempts < rule.max_attempts:
            state.next_at = wall + dt.timedelta(seconds=rule.delay_s)
            self._finish(state, Status.PENDING, result, result_code, wall, closes_attempt=True)
        else:
            self._finish(state, Status.DONE, result, result_code, wall, closes_attempt=True)

    def _finish(self, state: TargetState, status: Status, result: Result | None, code: str | None,
                wall: dt.datetime, *, closes_attempt: bool = False) -> None:
        state.status = status
        state.last_result = result if result is not None else state.last_result
        state.result_code = code
        self.store.save(state, wall, result if closes_attempt else None)

    # -- reporting -------------------------------------------------------------------------

    @_serialized
    def progress(self, campaign_id: str) -> Progress:
        running = self._campaigns[campaign_id]
        spec = running.campaign.spec
        states = list(running.targets.values())
        by_code: dict[str, int] = {}
        completed = done = 0
        for s in states:
            if s.status is not Status.DONE:
                continue
            done += 1
            code = s.result_code or (s.last_result.value if s.last_result else "none")
            by_code[code] = by_code.get(code, 0) + 1
            if code in spec.completed_result_codes and code not in spec.human_result_codes:
                completed += 1
        return Progress(campaign_id, campaign_id in self._paused, len(states),
                        sum(1 for s in states if s.attempts > 0), completed, done, by_code)
