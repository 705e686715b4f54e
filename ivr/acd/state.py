"""The distributor's state, shared by its parts, and the few moves more than one part makes.

`AcdState` is plain data plus primitives (note an agent's change, take a caller out, withdraw an
offer, end a bridged call, arm a deadline). The parts decide: `matching` (who rings whom),
`overflow` (arrivals, max wait, callbacks, callers leaving), `leases` (nodes that went silent) and
`dispatch` (sites lending agents). Only `Distributor.apply` calls them, in log order, so the state
has one writer; `snapshot` turns all of it into JSON and back.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.acd.agent import Agent, AgentEvent, AgentState
from ivr.acd.config import AcdConfig
from ivr.acd.dispatch import DispatchBook
from ivr.acd.errors import UnknownAgent
from ivr.acd.events import (
    AcdEvent,
    AgentChanged,
    CallerLeft,
    Offer,
    OfferKind,
    OfferWithdrawn,
    RejectReason,
    WithdrawReason,
)
from ivr.acd.queue import Caller, QueueState
from ivr.call import QueueOutcomeKind, QueueResult


class DeadlineKind(enum.Enum):
    RING = "ring"
    """An offer's ring timeout (ref: offer id)."""
    WRAP = "wrap"
    """An agent's wrap-up end (ref: agent id)."""
    MAX_WAIT = "max_wait"
    """A caller's max wait in its queue (ref: call id)."""
    RECHECK = "recheck"
    """A caller may take more agents now: its match widened or a missed agent's skip ran out."""


Deadline = tuple[float, int, DeadlineKind, str]
"""(at, tie-break, kind, ref) on a heap; entries made stale by later changes are skipped."""


class Rejected(Exception):
    """A lost race or a misuse: the command is answered with CommandRejected and changes nothing."""

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


class AcdState:
    """Every queue, caller, offer, agent, dispatch and node lease of the ACD."""

    __slots__ = (
        "config",
        "lease_s",
        "rng",
        "agents",
        "queues",
        "callers",
        "offers",
        "connected",
        "dispatch",
        "nodes",
        "applied",
        "now",
        "wall",
        "agent_order",
        "free",
        "seq",
        "offer_seq",
        "deadlines",
        "tie",
        "dirty_callers",
        "dirty_agents",
        "dirty_all",
        "_digest",
    )

    def __init__(self, config: AcdConfig, *, lease_s: float | None, rng: random.Random) -> None:
        self.config = config
        self.lease_s = lease_s
        self.rng = rng
        self.agents: dict[str, Agent] = {a: Agent(cfg) for a, cfg in config.agents.items()}
        self.queues: dict[str, QueueState] = {q: QueueState(cfg) for q, cfg in config.queues.items()}
        self.callers: dict[str, Caller] = {}
        self.offers: dict[str, Offer] = {}
        self.connected: dict[str, Connected] = {}
        self.dispatch = DispatchBook(config)
        self.nodes: dict[str, float] = {}
        """Live nodes and when each was last heard of (ACD time)."""
        self.applied: dict[str, int] = {}
        """Per node, the highest command number applied: a command re-sent after a Redis restart
        that had been applied already is skipped."""
        self.now = -math.inf
        self.wall: datetime | None = None
        """Wall time of the latest command (None before the first): night hours and dispatch ends."""
        self.agent_order = tuple(config.agents)
        self.free: dict[str, None] = {}
        """Agents that can take a call now, in the order they became free (the strategies' pool)."""
        self.seq = 0
        self.offer_seq = 0
        self.deadlines: list[Deadline] = []
        self.tie = 0
        self.dirty_callers: dict[str, None] = {}
        self.dirty_agents: dict[str, None] = {}
        self.dirty_all = False
        self._digest: str | None = None

    @property
    def config_digest(self) -> str:
        """Names the configuration (snapshots carry it); computed once, it takes a few ms."""
        if self._digest is None:
            self._digest = hashlib.sha256(repr(self.config).encode()).hexdigest()[:16]
        return self._digest

    # --- lookups --------------------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise Rejected(RejectReason.UNKNOWN_AGENT, str(UnknownAgent(f"no agent {agent_id!r}")))
        return agent

    def live_offer(self, offer_id: str) -> Offer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise Rejected(RejectReason.STALE_OFFER, f"offer {offer_id!r} is no longer live")
        return offer

    def member_of(self, agent: Agent, queue_id: str, extra_sites: tuple[str, ...]) -> bool:
        cfg = self.queues[queue_id].config
        if cfg.skill is not None and cfg.skill not in agent.config.skills:
            return False
        site = agent.config.site
        return (
            not cfg.sites or site in cfg.sites or site in extra_sites or site in self.dispatch.borrowed_sites(queue_id)
        )

    def member(self, agent: Agent, caller: Caller) -> bool:
        return self.member_of(agent, caller.queue, caller.extra_sites)

    def widen_at(self, caller: Caller, step: int) -> float:
        """When `caller` accepts any dialect (step 1) or any level of its skills (step 2)."""
        return caller.enqueued_at + step * self.queues[caller.queue].config.widen_after_s

    # --- deadlines ------------------------------------------------------------------------------

    def push(self, at: float, kind: DeadlineKind, ref: str) -> None:
        self.tie += 1
        heapq.heappush(self.deadlines, (at, self.tie, kind, ref))

    def deadline_live(self, entry: Deadline) -> bool:
        at, _, kind, ref = entry
        if kind is DeadlineKind.RING:
            offer = self.offers.get(ref)
            return offer is not None and offer.deadline == at
        if kind is DeadlineKind.WRAP:
            agent = self.agents[ref]
            return agent.state is AgentState.WRAP_UP and agent.wrap_up_until == at
        return ref in self.callers

    def next_timer(self) -> float | None:
        """The earliest live deadline on the heap (stale ones are dropped on the way)."""
        heap = self.deadlines
        while heap and not self.deadline_live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_deadline(self) -> Deadline:
        return heapq.heappop(self.deadlines)

    # --- moves several parts make ---------------------------------------------------------------

    def mark_caller(self, call_id: str) -> None:
        """The caller changed: the next match may offer it any free agent."""
        self.dirty_callers[call_id] = None

    def changed(self, agent: Agent, event: AgentEvent, out: list[AcdEvent]) -> None:
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
            self.free[agent.agent_id] = None
            self.dirty_agents[agent.agent_id] = None
        else:
            self.free.pop(agent.agent_id, None)

    def leave(self, caller: Caller, kind: QueueOutcomeKind, out: list[AcdEvent], **extra: Any) -> None:
        """Remove a caller from its queue for good."""
        self.queues[caller.queue].remove(caller)
        del self.callers[caller.call_id]
        self.dirty_callers.pop(caller.call_id, None)
        result = QueueResult(kind=kind, queue=caller.queue, wait_s=self.now - caller.enqueued_at, **extra)
        out.append(CallerLeft(caller.call_id, caller.node, result))

    def withdraw(self, offer: Offer, reason: WithdrawReason, out: list[AcdEvent]) -> None:
        """Take back a live offer without counting a miss; the agent stops ringing."""
        del self.offers[offer.offer_id]
        caller = self.callers.get(offer.call_id)
        if caller is not None:
            caller.offers.pop(offer.offer_id, None)
            if not caller.offers:
                self.mark_caller(caller.call_id)
        agent = self.agents[offer.agent_id]
        self.changed(agent, agent.ring_end(offer.call_id, self.now, missed=False), out)
        out.append(OfferWithdrawn(offer, reason))

    def withdraw_caller(self, caller: Caller, reason: WithdrawReason, out: list[AcdEvent]) -> None:
        """Stop every agent ringing for `caller`, all in one step."""
        for offer in list(caller.offers.values()):
            self.withdraw(offer, reason, out)

    def withdraw_agent_rings(self, agent: Agent, reason: WithdrawReason, out: list[AcdEvent]) -> None:
        for offer in [o for o in self.offers.values() if o.agent_id == agent.agent_id]:
            self.withdraw(offer, reason, out)

    def end_call(self, conn: Connected, out: list[AcdEvent]) -> None:
        """A bridged call ended: the agent goes to wrap-up (or on with their other calls)."""
        agent = self.agents[conn.agent_id]
        event, talk_s = agent.hangup(conn.call_id, self.now)
        del self.connected[conn.call_id]
        self.queues[conn.queue].recent_handle_s.append(talk_s + agent.config.wrap_up_s)
        if agent.wrap_up_until is not None and agent.state is AgentState.WRAP_UP:
            self.push(agent.wrap_up_until, DeadlineKind.WRAP, agent.agent_id)
        self.changed(agent, event, out)
