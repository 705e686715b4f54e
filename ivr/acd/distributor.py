"""The pure ACD core: fed commands with the time, returns what happened.

`Distributor.apply(command, node=, now=, wall=)` is the only way state changes, and it is called by
one writer (the facade's apply task, in log order), so every node of a cluster that applies the
same log holds the same state. It never reads a clock and never raises for a lost race (a stale
offer, a caller already gone: it returns `CommandRejected`). It composes five parts over one
`AcdState`: `Matcher` (who rings whom, and what became of each ring), `Overflow` (arrivals, max
wait, callbacks, callers leaving), `NodeLeases` (nodes gone silent), `Staffing` (agents' own
commands) and the `DispatchBook` (sites lending agents); the time loop and the reads are here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.acd.agent import Agent, AgentState, AgentStatus
from ivr.acd.commands import (
    Abandon,
    AgentCallEnded,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentResume,
    AgentWrapUpDone,
    Command,
    EndDispatch,
    Enqueue,
    Heartbeat,
    RequestCallback,
    RingAnswered,
    RingFailed,
    StartDispatch,
    Tick,
)
from ivr.acd.config import AcdConfig
from ivr.acd.dispatch import DispatchBook
from ivr.acd.errors import AcdError, UnknownQueue, UnknownSite
from ivr.acd.events import AcdEvent, CommandRejected, DispatchChanged, Offer, RejectReason, RingFailure
from ivr.acd.leases import NodeLeases
from ivr.acd.matching import NO_ANSWER_PAUSE, Matcher
from ivr.acd.overflow import Overflow
from ivr.acd.queue import Caller, QueueState
from ivr.acd.snapshot import decode_state, encode_state
from ivr.acd.staffing import Staffing
from ivr.acd.state import AcdState, Connected, DeadlineKind, Rejected

__all__ = ["NO_ANSWER_PAUSE", "AgentView", "Connected", "Distributor", "QueueStats"]

_SETTLE_ROUNDS = 10_000


@dataclass(slots=True, frozen=True)
class AgentView:
    """An agent as the dashboard and reports see it."""

    agent_id: str
    site: str
    status: AgentStatus
    state: AgentState
    pause_reason: str | None
    contact: str
    status_since: float
    state_since: float
    calls: tuple[str, ...]
    calls_answered: int
    calls_missed: int
    consecutive_misses: int
    talk_s: float


@dataclass(slots=True, frozen=True)
class QueueStats:
    queue: str
    waiting: int
    callbacks: int
    longest_wait_s: float
    agents_logged_in: int
    agents_free: int
    answered: int
    abandoned: int
    overflowed: int
    avg_handle_s: float
    borrowed_sites: tuple[str, ...]


class Distributor:
    """ACD state for every queue and agent; see the module docstring."""

    def __init__(
        self,
        config: AcdConfig,
        *,
        lease_s: float | None = None,
        rng: random.Random | None = None,
        state: AcdState | None = None,
    ) -> None:
        self.state = state or AcdState(config, lease_s=lease_s, rng=rng or random.Random(config.seed))
        self.matcher = Matcher(self.state)
        self.overflow = Overflow(self.state)
        self.leases = NodeLeases(self.state)
        self.staffing = Staffing(self.state)
        self._handlers: dict[type[Any], Callable[[Any, str, list[AcdEvent]], None]] = {
            Enqueue: self.overflow.enqueue,
            Abandon: self.overflow.abandon,
            RequestCallback: self.overflow.request_callback,
            RingAnswered: self._ring_answered,
            RingFailed: self._ring_failed,
            AgentCallEnded: self.staffing.call_ended,
            AgentLogin: self.staffing.login,
            AgentLogout: self.staffing.logout,
            AgentPause: self.staffing.pause,
            AgentResume: self.staffing.resume,
            AgentWrapUpDone: self.staffing.wrap_up_done,
            StartDispatch: self._start_dispatch,
            EndDispatch: self._end_dispatch,
            Heartbeat: lambda cmd, node, out: None,
            Tick: lambda cmd, node, out: None,
        }

    # --- the one entry point --------------------------------------------------------------------

    def apply(
        self, command: Command, *, node: str, now: float, wall: datetime, stamp: tuple[str, int] | None = None
    ) -> list[AcdEvent]:
        """Apply one command at `now` (never earlier than the last one) and return its events.

        `stamp` (sender, number), numbers rising per sender: a command stamped at or below the last
        one applied from that sender is a repeat (re-sent after a Redis restart) and changes nothing.
        """
        s = self.state
        if stamp is not None:
            sender, number = stamp
            if number <= s.applied.get(sender, 0):
                return []
            s.applied[sender] = number
        if now > s.now:
            s.now = now
        if s.wall is None or wall > s.wall:
            s.wall = wall
        out: list[AcdEvent] = []
        self.leases.heard(node)
        try:
            self._handlers[type(command)](command, node, out)
        except Rejected as exc:
            out.append(CommandRejected(exc.reason, str(exc)))
        self._settle(out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which `apply(Tick())` would change something."""
        s = self.state
        times = [t for t in (s.next_timer(), self.leases.next_expiry()) if t is not None]
        if s.wall is not None:
            to_change = s.dispatch.seconds_to_next_change(s.wall)
            if to_change is not None:
                times.append(s.now + to_change)
        return min(times) if times else None

    # --- snapshots ------------------------------------------------------------------------------

    def snapshot(self) -> str:
        """The whole state as JSON text (see `ivr.acd.snapshot`)."""
        return encode_state(self.state)

    @classmethod
    def restore(cls, config: AcdConfig, text: str | bytes, *, lease_s: float | None = None) -> Distributor:
        """The distributor a snapshot saved; raises BackendError if it was made with another config."""
        return cls(config, state=decode_state(text, config, lease_s=lease_s))

    def renew_leases(self, now: float) -> None:
        """Every known node gets a fresh lease from `now` (after a Redis outage no node could renew
        its own; they are given the lease time to come back)."""
        self.state.now = max(self.state.now, now)
        self.leases.renew_all()

    # --- reads ----------------------------------------------------------------------------------

    @property
    def config(self) -> AcdConfig:
        return self.state.config

    @property
    def agents(self) -> dict[str, Agent]:
        return self.state.agents

    @property
    def queues(self) -> dict[str, QueueState]:
        return self.state.queues

    @property
    def callers(self) -> dict[str, Caller]:
        return self.state.callers

    @property
    def offers(self) -> dict[str, Offer]:
        return self.state.offers

    @property
    def connected(self) -> dict[str, Connected]:
        return self.state.connected

    @property
    def dispatch(self) -> DispatchBook:
        return self.state.dispatch

    @property
    def nodes(self) -> dict[str, float]:
        return self.state.nodes

    @property
    def now(self) -> float:
        return self.state.now

    def position(self, call_id: str) -> int | None:
        caller = self.state.callers.get(call_id)
        return None if caller is None else self.state.queues[caller.queue].position(caller)

    def estimated_wait_s(self, call_id: str) -> float | None:
        """Place in queue times the queue's recent handle time, shared among its logged-in agents."""
        caller = self.state.callers.get(call_id)
        if caller is None:
            return None
        if caller.offers:
            return 0.0
        queue = self.state.queues[caller.queue]
        return queue.position(caller) * queue.avg_handle_s() / max(self.matcher.staffed(caller), 1)

    def agent_view(self, agent_id: str) -> AgentView:
        a = self.state.agent(agent_id)
        return AgentView(
            agent_id=a.agent_id,
            site=a.config.site,
            status=a.status,
            state=a.state,
            pause_reason=a.pause_reason,
            contact=a.contact,
            status_since=a.status_since,
            state_since=a.state_since,
            calls=tuple(a.legs),
            calls_answered=a.calls_answered,
            calls_missed=a.calls_missed,
            consecutive_misses=a.consecutive_misses,
            talk_s=a.talk_s,
        )

    def queue_stats(self, queue_id: str) -> QueueStats:
        s = self.state
        q = s.queues.get(queue_id)
        if q is None:
            raise UnknownQueue(f"no queue {queue_id!r}")
        callers = list(q.callers.values())
        members = [a for a in s.agents.values() if s.member_of(a, queue_id, ())]
        return QueueStats(
            queue=queue_id,
            waiting=sum(1 for c in callers if c.callback_number is None),
            callbacks=sum(1 for c in callers if c.callback_number is not None),
            longest_wait_s=max((s.now - c.enqueued_at for c in callers), default=0.0),
            agents_logged_in=sum(1 for a in members if a.status is not AgentStatus.LOGGED_OUT),
            agents_free=sum(1 for a in members if a.can_take_call()),
            answered=q.answered,
            abandoned=q.abandoned,
            overflowed=q.overflowed,
            avg_handle_s=q.avg_handle_s(),
            borrowed_sites=tuple(sorted(s.dispatch.borrowed_sites(queue_id))),
        )

    def waiting_in_order(self, queue_ids: Iterable[str] | None = None) -> Iterator[Caller]:
        """Every waiting caller (and callback) across queues in service order."""
        return self.matcher.waiting_in_order(queue_ids)

    def eligible(self, agent: Agent, caller: Caller) -> bool:
        """May `agent`, free now, be offered `caller` now (membership, site, skills, dialect)?"""
        return self.matcher.eligible(agent, caller)

    def dispatch_log(self) -> list[DispatchChanged]:
        return list(self.state.dispatch.log)

    # --- agents ---------------------------------------------------------------------------------

    def _ring_answered(self, cmd: RingAnswered, node: str, out: list[AcdEvent]) -> None:
        self.matcher.answered(cmd.offer_id, out)

    def _ring_failed(self, cmd: RingFailed, node: str, out: list[AcdEvent]) -> None:
        self.matcher.failed(self.state.live_offer(cmd.offer_id), cmd.reason, out)

    # --- dispatch -------------------------------------------------------------------------------

    def _start_dispatch(self, cmd: StartDispatch, node: str, out: list[AcdEvent]) -> None:
        s = self.state
        assert s.wall is not None  # set by apply
        request = cmd.request
        if request.until is not None and request.until.tzinfo is None:
            raise Rejected(RejectReason.INVALID, f"dispatch to {request.region!r}: 'until' needs a time zone")
        try:
            out.append(s.dispatch.start(request, s.wall))
        except UnknownQueue as exc:
            raise Rejected(RejectReason.UNKNOWN_QUEUE, str(exc)) from exc
        except UnknownSite as exc:
            raise Rejected(RejectReason.UNKNOWN_SITE, str(exc)) from exc
        except AcdError as exc:
            raise Rejected(RejectReason.INVALID, str(exc)) from exc
        s.dirty_all = True

    def _end_dispatch(self, cmd: EndDispatch, node: str, out: list[AcdEvent]) -> None:
        s = self.state
        assert s.wall is not None  # set by apply
        try:
            out.append(s.dispatch.end(cmd.dispatch_id, s.wall))
        except AcdError as exc:
            raise Rejected(RejectReason.INVALID, str(exc)) from exc
        s.dirty_all = True

    # --- time and matching ----------------------------------------------------------------------

    def _run_due(self, out: list[AcdEvent]) -> None:
        s = self.state
        self.leases.expire(out)
        if s.wall is not None:
            changes = s.dispatch.advance(s.wall)
            if changes:
                out.extend(changes)
                s.dirty_all = True
        while (at := s.next_timer()) is not None and at <= s.now:
            _, _, kind, ref = s.pop_deadline()
            if kind is DeadlineKind.RING:
                self.matcher.failed(s.offers[ref], RingFailure.NO_ANSWER, out)
            elif kind is DeadlineKind.WRAP:
                agent = s.agents[ref]
                s.changed(agent, agent.end_wrap_up(s.now), out)
            elif kind is DeadlineKind.MAX_WAIT:
                self.overflow.max_wait(s.callers[ref], out)
            else:
                s.mark_caller(ref)

    def _settle(self, out: list[AcdEvent]) -> None:
        s = self.state
        for _ in range(_SETTLE_ROUNDS):
            self._run_due(out)
            if not (s.dirty_all or s.dirty_callers or s.dirty_agents):
                return
            self.matcher.match(out)
        raise AssertionError("distributor did not settle")  # our invariant, never peer input
