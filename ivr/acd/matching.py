"""Who rings whom: eligibility, the match after every change, offers and their outcome.

The invariant this part restores after every command: no waiting caller that is not being rung has
a free agent it may be offered to. So an agent that becomes free takes the first eligible caller in
(priority, arrival) order, and a caller that arrives or becomes eligible takes the best free agent
by its queue's strategy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator

from ivr.acd.agent import Agent, AgentStatus
from ivr.acd.events import (
    AcdEvent,
    CallerConnected,
    Offer,
    OfferFailed,
    OfferKind,
    OfferMade,
    RingFailure,
    WithdrawReason,
)
from ivr.acd.queue import Caller
from ivr.acd.state import AcdState, Connected, DeadlineKind
from ivr.acd.strategy import rank
from ivr.call import QueueOutcomeKind

NO_ANSWER_PAUSE = "no_answer"
"""Pause reason given to an agent who missed `max_no_answer` offers in a row."""


class Matcher:
    """Offers free agents to waiting callers and settles what became of each offer."""

    __slots__ = ("state",)

    def __init__(self, state: AcdState) -> None:
        self.state = state

    # --- eligibility ----------------------------------------------------------------------------

    def waiting_in_order(self, queue_ids: Iterable[str] | None = None) -> Iterator[Caller]:
        """Every waiting caller (and callback) across queues in service order."""
        s = self.state
        names = list(s.queues) if queue_ids is None else list(queue_ids)
        for key in heapq.merge(*(s.queues[q].order for q in names)):
            yield s.callers[key[2]]

    def eligible(self, agent: Agent, caller: Caller) -> bool:
        """May `agent`, free now, be offered `caller` now (membership, site, skills, dialect)?"""
        s = self.state
        if not agent.can_take_call() or caller.missed_until.get(agent.agent_id, -math.inf) > s.now:
            return False
        if not s.member(agent, caller):
            return False
        # Compare against the very expressions `_arm` schedules (`widen_at`), so a recheck at that
        # deadline sees the widening (now - enqueued_at >= widen can miss by a rounding error).
        have = agent.config.skills
        any_level = s.now >= s.widen_at(caller, 2)
        for skill, minimum in caller.skills.items():
            if have.get(skill, 0) < (min(minimum, 1) if any_level else minimum):
                return False
        return caller.dialect in agent.config.dialects or s.now >= s.widen_at(caller, 1)

    def staffed(self, caller: Caller) -> int:
        """Logged-in agents that may ever serve `caller` (for the estimated wait)."""
        s = self.state
        return sum(1 for a in s.agents.values() if a.status is not AgentStatus.LOGGED_OUT and s.member(a, caller))

    # --- the match ------------------------------------------------------------------------------

    def match(self, out: list[AcdEvent]) -> None:
        """Restore the invariant after changes: walk waiting callers in service order and offer each
        the best free agent it may have. A caller that changed (arrived, rung in vain, widened...)
        may take any free agent; any other caller only an agent that just became free, since it
        was not eligible for the others before (the invariant)."""
        s = self.state
        everyone = s.dirty_all
        dirty_callers = set(s.dirty_callers)
        dirty_agents = [a for a in s.dirty_agents if a in s.free]
        s.dirty_all = False
        s.dirty_callers = {}
        s.dirty_agents = {}
        if not everyone and not dirty_agents:  # only callers changed: no need to walk the rest
            arrivals = sorted((s.callers[c] for c in dirty_callers if c in s.callers), key=lambda c: c.key)
            for caller in arrivals:
                if not s.free:
                    return
                if not caller.offers:
                    self._match_caller(caller, list(s.free), out)
            return
        pending = len(dirty_callers)
        for caller in list(self.waiting_in_order()):
            if not s.free or (not everyone and pending == 0 and not any(a in s.free for a in dirty_agents)):
                return
            changed = everyone or caller.call_id in dirty_callers
            pending -= caller.call_id in dirty_callers
            if caller.offers or caller.call_id not in s.callers:
                continue
            pool = list(s.free) if changed else [a for a in dirty_agents if a in s.free]
            self._match_caller(caller, pool, out)

    def _match_caller(self, caller: Caller, pool: list[str], out: list[AcdEvent]) -> None:
        s = self.state
        candidates = [a for a in (s.agents[f] for f in pool) if self.eligible(a, caller)]
        if not candidates:
            return
        queue = s.queues[caller.queue]
        # A caller who asked for no skill in particular is ranked by the queue's own skill, so a
        # skills-based queue still prefers its best agents (the green channel's elderly experts).
        skills = caller.skills or ({queue.config.skill: 1} if queue.config.skill else {})
        for agent in rank(
            queue.config.strategy,
            candidates,
            skills=skills,
            dialect=caller.dialect,
            member_order=s.agent_order,
            last_agent=queue.last_agent,
            rng=s.rng,
        ):
            self.offer(caller, agent, out)

    # --- offers ---------------------------------------------------------------------------------

    def offer(self, caller: Caller, agent: Agent, out: list[AcdEvent]) -> None:
        s = self.state
        cfg = s.queues[caller.queue].config
        s.offer_seq += 1
        offer = Offer(
            offer_id=f"o{s.offer_seq}",
            kind=OfferKind.CALL if caller.callback_number is None else OfferKind.CALLBACK,
            call_id=caller.call_id,
            agent_id=agent.agent_id,
            contact=agent.contact,
            queue=caller.queue,
            node=caller.node,
            ring_timeout_s=cfg.ring_timeout_s,
            deadline=s.now + cfg.ring_timeout_s,
            request=caller.request,
            callback_number=caller.callback_number,
            wait_s=s.now - caller.enqueued_at,
        )
        s.changed(agent, agent.offer(caller.call_id, s.now), out)
        caller.offers[offer.offer_id] = offer
        s.offers[offer.offer_id] = offer
        s.push(offer.deadline, DeadlineKind.RING, offer.offer_id)
        out.append(OfferMade(offer))

    def answered(self, offer_id: str, out: list[AcdEvent]) -> None:
        """The agent answered: bridge the caller, stop the other agents ringing for them."""
        s = self.state
        offer = s.live_offer(offer_id)
        caller = s.callers[offer.call_id]
        agent = s.agents[offer.agent_id]
        del s.offers[offer.offer_id]
        del caller.offers[offer.offer_id]
        s.changed(agent, agent.answer(caller.call_id, s.now), out)
        s.withdraw_caller(caller, WithdrawReason.ANSWERED_ELSEWHERE, out)
        queue = s.queues[caller.queue]
        queue.answered += 1
        queue.last_agent = agent.agent_id
        s.connected[caller.call_id] = Connected(caller.call_id, agent.agent_id, caller.queue, caller.node, offer.kind)
        out.append(CallerConnected(offer, s.now - caller.enqueued_at))
        if caller.callback_number is None:
            s.leave(caller, QueueOutcomeKind.ANSWERED, out, agent_id=agent.agent_id)
        else:  # the caller's ticket ended when they chose a callback
            queue.remove(caller)
            del s.callers[caller.call_id]

    def failed(self, offer: Offer, reason: RingFailure, out: list[AcdEvent]) -> None:
        """The agent did not answer: count a miss, skip the agent for this caller a while."""
        s = self.state
        del s.offers[offer.offer_id]
        caller = s.callers[offer.call_id]
        del caller.offers[offer.offer_id]
        agent = s.agents[offer.agent_id]
        cfg = s.queues[caller.queue].config
        caller.missed_until[agent.agent_id] = s.now + cfg.retry_after_s
        s.push(s.now + cfg.retry_after_s, DeadlineKind.RECHECK, caller.call_id)
        s.changed(agent, agent.ring_end(offer.call_id, s.now, missed=True), out)
        out.append(OfferFailed(offer, reason, agent.consecutive_misses))
        if agent.consecutive_misses >= cfg.max_no_answer and agent.status is AgentStatus.AVAILABLE:
            s.withdraw_agent_rings(agent, WithdrawReason.AGENT_PAUSED, out)
            s.changed(agent, agent.pause(NO_ANSWER_PAUSE, s.now), out)
        if not caller.offers:
            s.mark_caller(caller.call_id)
