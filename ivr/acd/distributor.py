"""The pure ACD core: fed commands with the time, returns what happened.

`Distributor.apply(command, node=, now=, wall=)` is the only way state changes, and it is called by
one writer (the facade's apply task, in log order), so every node of a cluster that applies the
same log holds the same state. It never reads a clock, never raises for a lost race (a stale
offer, a caller already gone: it returns `CommandRejected`), and keeps one invariant after every
command: no waiting caller that is not being rung has a free agent it may be offered to. So an
agent that becomes free takes the first eligible caller in (priority, arrival) order, and a caller
that arrives or becomes eligible takes the best free agent by its queue's strategy.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ivr.acd.agent import Agent, AgentEvent, AgentState, AgentStatus
from ivr.acd.commands import (
    Abandon,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentResume,
    CallEnded,
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
from ivr.acd.config import AcdConfig, OverflowKind, OverflowTarget
from ivr.acd.dispatch import DispatchBook
from ivr.acd.errors import AcdError, IllegalTransition, UnknownAgent, UnknownQueue, UnknownSite
from ivr.acd.events import (
    AcdEvent,
    AgentChanged,
    CallbackRegistered,
    CallbackSuggested,
    CallerConnected,
    CallerEnqueued,
    CallerLeft,
    CallerMoved,
    CommandRejected,
    DispatchChanged,
    NodeLost,
    Offer,
    OfferFailed,
    OfferKind,
    OfferMade,
    OfferWithdrawn,
    RejectReason,
    RingFailure,
    SitesWidened,
    WithdrawReason,
)
from ivr.acd.queue import Caller, QueueState
from ivr.acd.strategy import rank
from ivr.call import QueueOutcomeKind, QueueResult

NO_ANSWER_PAUSE = "no_answer"
"""Pause reason given to an agent who missed `max_no_answer` offers in a row."""


class _Rejected(Exception):
    """A lost race: the command is answered with CommandRejected and changes nothing."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class Connected:
    """A caller bridged to (or, for a callback, being dialled for) an agent."""

    call_id: str
    agent_id: str
    queue: str
    node: str
    kind: OfferKind


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


_DeadlineKind = str  # "ring" | "wrap" | "maxwait" | "recheck"


class Distributor:
    """ACD state for every queue and agent; see the module docstring."""

    def __init__(self, config: AcdConfig, *, lease_s: float | None = None, rng: random.Random | None = None):
        self.config = config
        self.lease_s = lease_s
        self.rng = rng if rng is not None else random.Random(config.seed)
        self.agents: dict[str, Agent] = {a: Agent(cfg) for a, cfg in config.agents.items()}
        self.queues: dict[str, QueueState] = {q: QueueState(cfg) for q, cfg in config.queues.items()}
        self.callers: dict[str, Caller] = {}
        self.offers: dict[str, Offer] = {}
        self.connected: dict[str, Connected] = {}
        self.dispatch = DispatchBook(config)
        self.nodes: dict[str, float] = {}
        self.now = -math.inf
        self.wall: datetime | None = None
        """Wall time of the latest command (None before the first): night hours and dispatch ends."""
        self._agent_order = tuple(config.agents)
        self._free: dict[str, None] = {}
        self._seq = 0
        self._offer_seq = 0
        self._deadlines: list[tuple[float, int, _DeadlineKind, str]] = []
        self._tie = itertools.count()
        self._dirty_callers: dict[str, None] = {}
        self._dirty_agents: dict[str, None] = {}
        self._dirty_all = False
        self._handlers: dict[type[Any], Callable[[Any, str, list[AcdEvent]], None]] = {
            Enqueue: self._enqueue,
            Abandon: self._abandon,
            RequestCallback: self._request_callback,
            RingAnswered: self._ring_answered,
            RingFailed: self._ring_failed,
            CallEnded: self._call_ended,
            AgentLogin: self._login,
            AgentLogout: self._logout,
            AgentPause: self._pause,
            AgentResume: self._resume,
            StartDispatch: self._start_dispatch,
            EndDispatch: self._end_dispatch,
            Heartbeat: lambda cmd, node, out: None,
            Tick: lambda cmd, node, out: None,
        }

    # --- the one entry point ------------------------------------------------------------------

    def apply(self, command: Command, *, node: str, now: float, wall: datetime) -> list[AcdEvent]:
        """Apply one command at `now` (never earlier than the last one) and return its events."""
        if now > self.now:
            self.now = now
        if self.wall is None or wall > self.wall:
            self.wall = wall
        out: list[AcdEvent] = []
        self.nodes[node] = self.now
        try:
            self._handlers[type(command)](command, node, out)
        except _Rejected as exc:
            out.append(CommandRejected(exc.reason, str(exc)))
        self._settle(out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which `apply(Tick())` would change something."""
        heap = self._deadlines
        while heap and not self._deadline_live(heap[0]):
            heapq.heappop(heap)
        times = [heap[0][0]] if heap else []
        if self.lease_s is not None:
            times += [seen + self.lease_s for seen in self.nodes.values()]
        if self.wall is not None:
            to_change = self.dispatch.seconds_to_next_change(self.wall)
            if to_change is not None:
                times.append(self.now + to_change)
        return min(times) if times else None

    # --- reads --------------------------------------------------------------------------------

    def position(self, call_id: str) -> int | None:
        caller = self.callers.get(call_id)
        return None if caller is None else self.queues[caller.queue].position(caller)

    def estimated_wait_s(self, call_id: str) -> float | None:
        """Place in queue times the queue's recent handle time, shared among its logged-in agents."""
        caller = self.callers.get(call_id)
        if caller is None:
            return None
        if caller.offers:
            return 0.0
        queue = self.queues[caller.queue]
        staffed = sum(
            1 for a in self.agents.values() if a.status is not AgentStatus.LOGGED_OUT and self._member(a, caller)
        )
        return queue.position(caller) * queue.avg_handle_s() / max(staffed, 1)

    def agent_view(self, agent_id: str) -> AgentView:
        a = self._agent(agent_id)
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
        q = self.queues.get(queue_id)
        if q is None:
            raise UnknownQueue(f"no queue {queue_id!r}")
        callers = list(q.callers.values())
        members = [a for a in self.agents.values() if self._member_of(a, queue_id, ())]
        return QueueStats(
            queue=queue_id,
            waiting=sum(1 for c in callers if c.callback_number is None),
            callbacks=sum(1 for c in callers if c.callback_number is not None),
            longest_wait_s=max((self.now - c.enqueued_at for c in callers), default=0.0),
            agents_logged_in=sum(1 for a in members if a.status is not AgentStatus.LOGGED_OUT),
            agents_free=sum(1 for a in members if a.can_take_call()),
            answered=q.answered,
            abandoned=q.abandoned,
            overflowed=q.overflowed,
            avg_handle_s=q.avg_handle_s(),
            borrowed_sites=tuple(sorted(self.dispatch.borrowed_sites(queue_id))),
        )

    def waiting_in_order(self, queue_ids: Iterator[str] | None = None) -> Iterator[Caller]:
        """Every waiting caller (and callback) across queues in service order."""
        names = list(self.queues) if queue_ids is None else list(queue_ids)
        for key in heapq.merge(*(self.queues[q].order for q in names)):
            yield self.callers[key[2]]

    def eligible(self, agent: Agent, caller: Caller) -> bool:
        """May `agent`, free now, be offered `caller` now (membership, site, skills, dialect)?"""
        if not agent.can_take_call() or caller.missed_until.get(agent.agent_id, -math.inf) > self.now:
            return False
        if not self._member(agent, caller):
            return False
        # Compare against the very expressions `_widen_at` schedules, so a recheck at that deadline
        # sees the widening (now - enqueued_at >= widen can miss by a rounding error).
        have = agent.config.skills
        any_level = self.now >= self._widen_at(caller, 2)
        for skill, minimum in caller.skills.items():
            if have.get(skill, 0) < (min(minimum, 1) if any_level else minimum):
                return False
        return caller.dialect in agent.config.dialects or self.now >= self._widen_at(caller, 1)

    def _widen_at(self, caller: Caller, step: int) -> float:
        """When `caller` accepts any dialect (step 1) or any level of its skills (step 2)."""
        return caller.enqueued_at + step * self.queues[caller.queue].config.widen_after_s

    # --- helpers ------------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise _Rejected(RejectReason.UNKNOWN_AGENT, str(UnknownAgent(f"no agent {agent_id!r}")))
        return agent

    def _member_of(self, agent: Agent, queue_id: str, extra_sites: tuple[str, ...]) -> bool:
        cfg = self.queues[queue_id].config
        if cfg.skill is not None and cfg.skill not in agent.config.skills:
            return False
        site = agent.config.site
        return (
            not cfg.sites or site in cfg.sites or site in extra_sites or site in self.dispatch.borrowed_sites(queue_id)
        )

    def _member(self, agent: Agent, caller: Caller) -> bool:
        return self._member_of(agent, caller.queue, caller.extra_sites)

    def _push(self, at: float, kind: _DeadlineKind, ref: str) -> None:
        heapq.heappush(self._deadlines, (at, next(self._tie), kind, ref))

    def _deadline_live(self, entry: tuple[float, int, _DeadlineKind, str]) -> bool:
        at, _, kind, ref = entry
        if kind == "ring":
            offer = self.offers.get(ref)
            return offer is not None and offer.deadline == at
        if kind == "wrap":
            agent = self.agents[ref]
            return agent.state is AgentState.WRAP_UP and agent.wrap_up_until == at
        return ref in self.callers  # "maxwait", "recheck"

    def _changed(self, agent: Agent, event: AgentEvent, out: list[AcdEvent]) -> None:
        out.append(
            AgentChanged(
                agent_id=agent.agent_id,
                event=event.value,
                status=agent.status.value,
                state=agent.state.value,
                pause_reason=agent.pause_reason,
                at=self.now,
                wall=self.wall or datetime.min,
                status_since=agent.status_since,
                state_since=agent.state_since,
            )
        )
        if agent.can_take_call():
            self._free[agent.agent_id] = None
            self._dirty_agents[agent.agent_id] = None
        else:
            self._free.pop(agent.agent_id, None)

    def _leave(self, caller: Caller, kind: QueueOutcomeKind, out: list[AcdEvent], **extra: Any) -> None:
        """Remove a caller from its queue for good."""
        self.queues[caller.queue].remove(caller)
        del self.callers[caller.call_id]
        self._dirty_callers.pop(caller.call_id, None)
        result = QueueResult(kind=kind, queue=caller.queue, wait_s=self.now - caller.enqueued_at, **extra)
        out.append(CallerLeft(caller.call_id, caller.node, result))

    def _withdraw(self, offer: Offer, reason: WithdrawReason, out: list[AcdEvent]) -> None:
        """Take back a live offer without counting a miss; the agent stops ringing."""
        del self.offers[offer.offer_id]
        caller = self.callers.get(offer.call_id)
        if caller is not None:
            caller.offers.pop(offer.offer_id, None)
            if not caller.offers:
                self._dirty_callers[caller.call_id] = None
        agent = self.agents[offer.agent_id]
        self._changed(agent, agent.ring_end(offer.call_id, self.now, missed=False), out)
        out.append(OfferWithdrawn(offer, reason))

    def _withdraw_agent_rings(self, agent: Agent, reason: WithdrawReason, out: list[AcdEvent]) -> None:
        for offer in [o for o in self.offers.values() if o.agent_id == agent.agent_id]:
            self._withdraw(offer, reason, out)

    def _live_offer(self, offer_id: str) -> Offer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise _Rejected(RejectReason.STALE_OFFER, f"offer {offer_id!r} is no longer live")
        return offer

    # --- callers ------------------------------------------------------------------------------

    def _enqueue(self, cmd: Enqueue, node: str, out: list[AcdEvent]) -> None:
        if cmd.queue not in self.queues:
            raise _Rejected(RejectReason.UNKNOWN_QUEUE, f"no queue {cmd.queue!r} for call {cmd.call_id!r}")
        if cmd.call_id in self.callers or cmd.call_id in self.connected:
            raise _Rejected(RejectReason.DUPLICATE_CALL, f"call {cmd.call_id!r} is already queued")
        queue = self.queues[cmd.queue]
        while queue.config.max_length is not None and len(queue) >= queue.config.max_length:
            target = queue.config.overflow
            assert target is not None  # the loader requires an overflow target with max_length
            queue.overflowed += 1
            if target.kind is not OverflowKind.QUEUE or target.target is None:
                result = QueueResult(QueueOutcomeKind.OVERFLOWED, queue.config.queue_id, target=str(target))
                out.append(CallerLeft(cmd.call_id, node, result))
                return
            queue = self.queues[target.target]
        self._seq += 1
        caller = Caller(
            call_id=cmd.call_id,
            queue=queue.config.queue_id,
            node=node,
            priority=cmd.priority,
            seq=self._seq,
            enqueued_at=self.now,
            queue_entered_at=self.now,
            skills=dict(cmd.skills),
            dialect=cmd.dialect,
            context=dict(cmd.context),
        )
        if not queue.config.join_empty and not any(
            a.status is not AgentStatus.LOGGED_OUT and self._member(a, caller) for a in self.agents.values()
        ):
            out.append(CallerLeft(cmd.call_id, node, QueueResult(QueueOutcomeKind.UNAVAILABLE, caller.queue)))
            return
        queue.add(caller)
        self.callers[caller.call_id] = caller
        self._arm_caller(caller)
        out.append(CallerEnqueued(caller.call_id, caller.queue, node, caller.priority, queue.position(caller)))
        self._dirty_callers[caller.call_id] = None

    def _arm_caller(self, caller: Caller) -> None:
        cfg = self.queues[caller.queue].config
        if cfg.max_wait_s is not None:
            self._push(caller.queue_entered_at + cfg.max_wait_s, "maxwait", caller.call_id)
        for step in (1, 2):
            at = self._widen_at(caller, step)
            if at > self.now:
                self._push(at, "recheck", caller.call_id)

    def _abandon(self, cmd: Abandon, node: str, out: list[AcdEvent]) -> None:
        caller = self.callers.get(cmd.call_id)
        if caller is not None:
            for offer in list(caller.offers.values()):
                self._withdraw(offer, WithdrawReason.CALLER_LEFT, out)
            self.queues[caller.queue].abandoned += 1
            self._leave(caller, QueueOutcomeKind.ABANDONED, out)
        elif cmd.call_id in self.connected:  # the caller hung up on the agent
            self._end_call(self.connected[cmd.call_id], out)
        else:
            raise _Rejected(RejectReason.UNKNOWN_CALL, f"call {cmd.call_id!r} is not queued")

    def _request_callback(self, cmd: RequestCallback, node: str, out: list[AcdEvent]) -> None:
        caller = self.callers.get(cmd.call_id)
        if caller is None:
            raise _Rejected(RejectReason.UNKNOWN_CALL, f"call {cmd.call_id!r} is not queued")
        if not cmd.number:
            raise _Rejected(RejectReason.INVALID, f"call {cmd.call_id!r}: empty callback number")
        for offer in list(caller.offers.values()):  # the caller is leaving the line
            self._withdraw(offer, WithdrawReason.CALLER_LEFT, out)
        first = caller.callback_number is None
        caller.callback_number = cmd.number
        queue = self.queues[caller.queue]
        out.append(CallbackRegistered(caller.call_id, caller.queue, cmd.number, queue.position(caller)))
        if first:
            result = QueueResult(
                QueueOutcomeKind.CALLBACK,
                caller.queue,
                wait_s=self.now - caller.enqueued_at,
                callback_number=cmd.number,
            )
            out.append(CallerLeft(caller.call_id, caller.node, result))
        self._dirty_callers[caller.call_id] = None

    def _overflow(self, caller: Caller, out: list[AcdEvent]) -> None:
        """The caller waited its queue's max wait: apply the queue's overflow target."""
        queue = self.queues[caller.queue]
        target: OverflowTarget | None = queue.config.overflow
        if target is None or caller.callback_number is not None or caller.max_wait_handled:
            return
        max_wait = queue.config.max_wait_s
        if max_wait is None or self.now < caller.queue_entered_at + max_wait:
            return  # a deadline left from the queue the caller overflowed from
        if caller.offers:  # an agent is ringing: decide when the ring ends
            self._push(min(o.deadline for o in caller.offers.values()), "maxwait", caller.call_id)
            return
        queue.overflowed += 1
        if target.kind is OverflowKind.QUEUE and target.target is not None:
            queue.remove(caller)
            caller.queue = target.target
            caller.queue_entered_at = self.now
            self.queues[caller.queue].add(caller)
            self._arm_caller(caller)
            out.append(CallerMoved(caller.call_id, queue.config.queue_id, caller.queue))
            self._dirty_callers[caller.call_id] = None
        elif target.kind is OverflowKind.SITE and target.target is not None:
            caller.max_wait_handled = True
            caller.extra_sites = (*caller.extra_sites, target.target)
            out.append(SitesWidened(caller.call_id, caller.queue, target.target))
            self._dirty_callers[caller.call_id] = None
        elif target.kind is OverflowKind.CALLBACK:
            caller.max_wait_handled = True
            out.append(CallbackSuggested(caller.call_id, caller.queue))
        else:
            self._leave(caller, QueueOutcomeKind.OVERFLOWED, out, target=str(target))

    # --- offers and calls ---------------------------------------------------------------------

    def _offer(self, caller: Caller, agent: Agent, out: list[AcdEvent]) -> None:
        cfg = self.queues[caller.queue].config
        self._offer_seq += 1
        offer = Offer(
            offer_id=f"o{self._offer_seq}",
            kind=OfferKind.CALL if caller.callback_number is None else OfferKind.CALLBACK,
            call_id=caller.call_id,
            agent_id=agent.agent_id,
            contact=agent.contact,
            queue=caller.queue,
            node=caller.node,
            ring_timeout_s=cfg.ring_timeout_s,
            deadline=self.now + cfg.ring_timeout_s,
            priority=caller.priority,
            dialect=caller.dialect,
            context=caller.context,
            callback_number=caller.callback_number,
            wait_s=self.now - caller.enqueued_at,
        )
        self._changed(agent, agent.offer(caller.call_id, self.now), out)
        caller.offers[offer.offer_id] = offer
        self.offers[offer.offer_id] = offer
        self._push(offer.deadline, "ring", offer.offer_id)
        out.append(OfferMade(offer))

    def _ring_answered(self, cmd: RingAnswered, node: str, out: list[AcdEvent]) -> None:
        offer = self._live_offer(cmd.offer_id)
        caller = self.callers[offer.call_id]
        agent = self.agents[offer.agent_id]
        del self.offers[offer.offer_id]
        del caller.offers[offer.offer_id]
        self._changed(agent, agent.answer(caller.call_id, self.now), out)
        for other in list(caller.offers.values()):
            self._withdraw(other, WithdrawReason.ANSWERED_ELSEWHERE, out)
        queue = self.queues[caller.queue]
        queue.answered += 1
        queue.last_agent = agent.agent_id
        self.connected[caller.call_id] = Connected(
            caller.call_id, agent.agent_id, caller.queue, caller.node, offer.kind
        )
        wait_s = self.now - caller.enqueued_at
        out.append(CallerConnected(offer, wait_s))
        if caller.callback_number is None:
            self._leave(caller, QueueOutcomeKind.ANSWERED, out, agent_id=agent.agent_id)
        else:  # the caller's ticket ended when they chose a callback
            queue.remove(caller)
            del self.callers[caller.call_id]

    def _fail(self, offer: Offer, reason: RingFailure, out: list[AcdEvent]) -> None:
        """The agent did not answer: count a miss, skip the agent for this caller a while."""
        del self.offers[offer.offer_id]
        caller = self.callers[offer.call_id]
        del caller.offers[offer.offer_id]
        agent = self.agents[offer.agent_id]
        cfg = self.queues[caller.queue].config
        caller.missed_until[agent.agent_id] = self.now + cfg.retry_after_s
        self._push(self.now + cfg.retry_after_s, "recheck", caller.call_id)
        self._changed(agent, agent.ring_end(offer.call_id, self.now, missed=True), out)
        out.append(OfferFailed(offer, reason, agent.consecutive_misses))
        if agent.consecutive_misses >= cfg.max_no_answer and agent.status is AgentStatus.AVAILABLE:
            self._withdraw_agent_rings(agent, WithdrawReason.AGENT_PAUSED, out)
            self._changed(agent, agent.pause(NO_ANSWER_PAUSE, self.now), out)
        if not caller.offers:
            self._dirty_callers[caller.call_id] = None

    def _ring_failed(self, cmd: RingFailed, node: str, out: list[AcdEvent]) -> None:
        self._fail(self._live_offer(cmd.offer_id), cmd.reason, out)

    def _end_call(self, conn: Connected, out: list[AcdEvent]) -> None:
        agent = self.agents[conn.agent_id]
        event, talk_s = agent.hangup(conn.call_id, self.now)
        del self.connected[conn.call_id]
        self.queues[conn.queue].recent_handle_s.append(talk_s + agent.config.wrap_up_s)
        if agent.wrap_up_until is not None and agent.state is AgentState.WRAP_UP:
            self._push(agent.wrap_up_until, "wrap", agent.agent_id)
        self._changed(agent, event, out)

    def _call_ended(self, cmd: CallEnded, node: str, out: list[AcdEvent]) -> None:
        agent = self._agent(cmd.agent_id)
        call_id = cmd.call_id
        if call_id is None:
            calls = agent.connected_calls()
            if len(calls) != 1:
                raise _Rejected(
                    RejectReason.UNKNOWN_CALL,
                    f"agent {agent.agent_id!r} has {len(calls)} calls: name the one that ended",
                )
            call_id = calls[0]
        conn = self.connected.get(call_id)
        if conn is None or conn.agent_id != agent.agent_id:
            raise _Rejected(RejectReason.UNKNOWN_CALL, f"agent {agent.agent_id!r} is not on call {call_id!r}")
        self._end_call(conn, out)

    # --- agents -------------------------------------------------------------------------------

    def _status_change(self, agent_id: str, event: AgentEvent) -> Agent:
        agent = self._agent(agent_id)
        if not agent.allows(event):
            raise _Rejected(RejectReason.ILLEGAL, str(IllegalTransition(agent_id, agent.status.value, event.value)))
        return agent

    def _login(self, cmd: AgentLogin, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.LOGIN)
        self._changed(agent, agent.login(cmd.contact, self.now), out)

    def _logout(self, cmd: AgentLogout, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.LOGOUT)
        self._withdraw_agent_rings(agent, WithdrawReason.AGENT_LOGGED_OUT, out)
        self._changed(agent, agent.logout(self.now), out)

    def _pause(self, cmd: AgentPause, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.PAUSE)
        self._withdraw_agent_rings(agent, WithdrawReason.AGENT_PAUSED, out)
        self._changed(agent, agent.pause(cmd.reason, self.now), out)

    def _resume(self, cmd: AgentResume, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.RESUME)
        self._changed(agent, agent.resume(self.now), out)

    # --- dispatch -----------------------------------------------------------------------------

    def _start_dispatch(self, cmd: StartDispatch, node: str, out: list[AcdEvent]) -> None:
        assert self.wall is not None  # set by apply
        if cmd.until is not None and cmd.until.tzinfo is None:
            raise _Rejected(RejectReason.INVALID, f"dispatch to {cmd.region!r}: 'until' needs a time zone")
        try:
            out.append(self.dispatch.start(cmd, self.wall))
        except UnknownQueue as exc:
            raise _Rejected(RejectReason.UNKNOWN_QUEUE, str(exc)) from exc
        except UnknownSite as exc:
            raise _Rejected(RejectReason.UNKNOWN_SITE, str(exc)) from exc
        except AcdError as exc:
            raise _Rejected(RejectReason.INVALID, str(exc)) from exc
        self._dirty_all = True

    def _end_dispatch(self, cmd: EndDispatch, node: str, out: list[AcdEvent]) -> None:
        assert self.wall is not None  # set by apply
        try:
            out.append(self.dispatch.end(cmd.dispatch_id, self.wall))
        except AcdError as exc:
            raise _Rejected(RejectReason.INVALID, str(exc)) from exc
        self._dirty_all = True

    def dispatch_log(self) -> list[DispatchChanged]:
        return list(self.dispatch.log)

    # --- nodes --------------------------------------------------------------------------------

    def _expire_nodes(self, out: list[AcdEvent]) -> None:
        if self.lease_s is None:
            return
        dead = [n for n, seen in self.nodes.items() if seen + self.lease_s <= self.now]
        for node in dead:
            del self.nodes[node]
        heir = min(self.nodes) if self.nodes else None
        for node in dead:
            gone: list[str] = []
            for caller in [c for c in self.callers.values() if c.node == node]:
                for offer in list(caller.offers.values()):
                    self._withdraw(offer, WithdrawReason.NODE_LOST, out)
                if caller.callback_number is not None and heir is not None:
                    caller.node = heir  # a callback outlives the node that took it
                    self._dirty_callers[caller.call_id] = None
                else:
                    gone.append(caller.call_id)
                    self.queues[caller.queue].abandoned += 1
                    self._leave(caller, QueueOutcomeKind.ABANDONED, out)
            for conn in [c for c in self.connected.values() if c.node == node]:
                gone.append(conn.call_id)
                self._end_call(conn, out)
            out.append(NodeLost(node, tuple(gone), heir))

    # --- time and matching --------------------------------------------------------------------

    def _run_due(self, out: list[AcdEvent]) -> None:
        self._expire_nodes(out)
        if self.wall is not None:
            changes = self.dispatch.advance(self.wall)
            if changes:
                out.extend(changes)
                self._dirty_all = True
        heap = self._deadlines
        while heap and heap[0][0] <= self.now:
            entry = heapq.heappop(heap)
            if not self._deadline_live(entry):
                continue
            at, _, kind, ref = entry
            if kind == "ring":
                self._fail(self.offers[ref], RingFailure.NO_ANSWER, out)
            elif kind == "wrap":
                agent = self.agents[ref]
                self._changed(agent, agent.end_wrap_up(self.now), out)
            elif kind == "maxwait":
                self._overflow(self.callers[ref], out)
            else:
                self._dirty_callers[ref] = None

    def _settle(self, out: list[AcdEvent]) -> None:
        for _ in range(10_000):
            self._run_due(out)
            if not (self._dirty_all or self._dirty_callers or self._dirty_agents):
                return
            self._match(out)
        raise AssertionError("distributor did not settle")  # our invariant, never peer input

    def _match(self, out: list[AcdEvent]) -> None:
        """Restore the invariant after changes: walk waiting callers in service order and offer each
        the best free agent it may have. A caller that changed (arrived, rung in vain, widened...)
        may take any free agent; any other caller only an agent that just became free, since it
        was not eligible for the others before (the invariant)."""
        everyone = self._dirty_all
        dirty_callers = set(self._dirty_callers)
        dirty_agents = [a for a in self._dirty_agents if a in self._free]
        self._dirty_all = False
        self._dirty_callers = {}
        self._dirty_agents = {}
        if not everyone and not dirty_agents:  # only callers changed: no need to walk the rest
            arrivals = sorted((self.callers[c] for c in dirty_callers if c in self.callers), key=lambda c: c.key)
            for caller in arrivals:
                if not self._free:
                    return
                if not caller.offers:
                    self._match_caller(caller, list(self._free), out)
            return
        pending = len(dirty_callers)
        for caller in list(self.waiting_in_order()):
            if not self._free or (not everyone and pending == 0 and not any(a in self._free for a in dirty_agents)):
                return
            changed = everyone or caller.call_id in dirty_callers
            pending -= caller.call_id in dirty_callers
            if caller.offers or caller.call_id not in self.callers:
                continue
            pool = list(self._free) if changed else [a for a in dirty_agents if a in self._free]
            self._match_caller(caller, pool, out)

    def _match_caller(self, caller: Caller, pool: list[str], out: list[AcdEvent]) -> None:
        candidates = [a for a in (self.agents[f] for f in pool) if self.eligible(a, caller)]
        if not candidates:
            return
        queue = self.queues[caller.queue]
        # A caller who asked for no skill in particular is ranked by the queue's own skill, so a
        # skills-based queue still prefers its best agents (the green channel's elderly experts).
        skills = caller.skills or ({queue.config.skill: 1} if queue.config.skill else {})
        for agent in rank(
            queue.config.strategy,
            candidates,
            skills=skills,
            dialect=caller.dialect,
            member_order=self._agent_order,
            last_agent=queue.last_agent,
            rng=self.rng,
        ):
            self._offer(caller, agent, out)

    # --- reporting helper ---------------------------------------------------------------------

    def wall_at(self, at: float) -> datetime | None:
        """The wall time of ACD time `at` (for records); None before the first command."""
        return None if self.wall is None else self.wall + timedelta(seconds=at - self.now)
