"""The caller's side of this node: queue tickets, and where each applied event goes.

Every entry's events reach `TicketDesk.route`: updates for a caller go to their `QueueTicket`, a
callback this node must place goes to its callback queue, and every event goes to the listeners
(dashboard, journeys). It also keeps this node's callers whole when the shared state lost them:
a node declared dead by its lease while alive puts its callers back and holds its bridged agents,
and after starting over from a snapshot it queues again any caller the new base lacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from ivr.acd.commands import Abandon, AgentPause, Enqueue
from ivr.acd.distributor import Distributor
from ivr.acd.events import (
    AcdEvent,
    CallbackSuggested,
    CallerLeft,
    CallerMoved,
    NodeLost,
    Offer,
    OfferFailed,
    OfferKind,
    OfferMade,
    OfferWithdrawn,
    SitesWidened,
    WithdrawReason,
)
from ivr.acd.replica import Replica
from ivr.call import QueueOutcomeKind, QueueRequest, QueueResult

log = structlog.get_logger(__name__)

HELD_REASON = "on a call (node lease lost)"
"""Pause reason of an agent still talking on a call the ACD ended when this node's lease ran out."""

TicketUpdate = OfferMade | OfferWithdrawn | OfferFailed | CallerMoved | SitesWidened | CallbackSuggested | CallerLeft
Listener = Callable[[AcdEvent], None]


def _call_of(event: AcdEvent) -> str | None:
    if isinstance(event, OfferMade | OfferWithdrawn | OfferFailed):
        return event.offer.call_id
    if isinstance(event, CallerMoved | SitesWidened | CallbackSuggested | CallerLeft):
        return event.call_id
    return None


class QueueTicket:
    """One caller's place in a queue, as the call layer holds it while playing music on hold."""

    def __init__(self, replica: Replica, call_id: str, request: QueueRequest) -> None:
        self._replica = replica
        self.call_id = call_id
        self.request = request
        self.result: QueueResult | None = None
        """Set when the wait is over (answered, abandoned, overflowed, callback, unavailable)."""
        self.leg_ended = False
        """The caller's leg ended (`Acd.abandon`): no offer is handed out for them any more."""
        self._updates: asyncio.Queue[list[TicketUpdate]] = asyncio.Queue()

    @property
    def queue(self) -> str:
        """The queue the caller is in now (it changes when the caller overflows to another queue)."""
        caller = self._replica.core.callers.get(self.call_id)
        return self.request.queue if caller is None else caller.queue

    def position(self) -> int | None:
        """1-based place in the queue; None once the wait is over."""
        return self._replica.core.position(self.call_id)

    def estimated_wait_s(self) -> float | None:
        return self._replica.core.estimated_wait_s(self.call_id)

    def announce_every_s(self) -> float:
        return self._replica.config.queues[self.queue].announce_every_s

    def deliver(self, updates: list[TicketUpdate]) -> None:
        for update in updates:
            if isinstance(update, CallerLeft):
                self.result = update.result
        self._updates.put_nowait(updates)

    async def next_updates(self) -> list[TicketUpdate]:
        """What changed for this caller in one step; after the final result, that result again."""
        if self._updates.empty() and self.result is not None:
            return [CallerLeft(self.call_id, self._replica.node_id, self.result)]
        return await self._updates.get()

    async def wait_for_offer(self) -> tuple[Offer, ...] | QueueResult:
        """The next agents to ring (several at once for ring-all), or the end of the wait."""
        while True:
            updates = await self.next_updates()
            offers = tuple(u.offer for u in updates if isinstance(u, OfferMade))
            if offers and not self.leg_ended:
                return offers
            for update in updates:
                if isinstance(update, CallerLeft):
                    return update.result


class TicketDesk:
    """This node's tickets, callback offers, listeners, and the callers it must not lose."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self.tickets: dict[str, QueueTicket] = {}
        self.callback_offers: asyncio.Queue[Offer] = asyncio.Queue()
        self.listeners: list[Listener] = []
        self.bridged: dict[str, str] = {}
        """This node's calls bridged to an agent now: call id → agent id."""
        self.held: dict[str, str] = {}
        """Bridged calls whose agent is paused because a lost lease ended the call in the ACD."""
        self.left: set[str] = set()
        """Calls whose leg ended, until their Abandon is applied (sent again after starting over)."""

    @property
    def node_id(self) -> str:
        return self._replica.node_id

    def route(self, events: list[AcdEvent]) -> None:
        """Hand events to tickets, to this node's callback queue and to listeners."""
        per_ticket: dict[str, list[TicketUpdate]] = {}
        for event in events:
            call_id = _call_of(event)
            if call_id is not None and call_id in self.tickets:
                assert isinstance(event, TicketUpdate)
                per_ticket.setdefault(call_id, []).append(event)
            if isinstance(event, OfferMade) and event.offer.kind is OfferKind.CALLBACK:
                if event.offer.node == self.node_id:
                    self.callback_offers.put_nowait(event.offer)
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a broken dashboard must not stop the queues
                    log.error("acd_listener_failed", event=type(event).__name__, exc_info=True)
        lost_here = self._lost_here(events)
        rejoining = {call_id for call_id in lost_here if call_id in self.tickets}
        for call_id, updates in per_ticket.items():
            if call_id in rejoining:
                continue  # this node is alive after all: the caller is put back, not dropped
            ticket = self.tickets[call_id]
            ticket.deliver(updates)
            if ticket.result is not None:
                del self.tickets[call_id]
                self.left.discard(call_id)
        for call_id in rejoining:
            self._rejoin(self.tickets[call_id], "acd_lease_lost_caller_requeued")
        for call_id in lost_here:
            self._hold_bridged_agent(call_id)

    def _lost_here(self, events: list[AcdEvent]) -> list[str]:
        """This node's calls that every copy of the log dropped because its lease ran out.

        A node that stalls past its lease (a long GIL pause, a frozen VM) is declared dead by
        every copy of the log, its own included; but if it is applying the log, it is alive, and
        so are its calls: waiting callers must be queued again, not told the queue dropped them,
        and agents still talking on its bridges must not be offered another call.
        """
        return [
            call_id
            for event in events
            if isinstance(event, NodeLost) and event.node == self.node_id
            for call_id in event.call_ids
        ]

    def _hold_bridged_agent(self, call_id: str) -> None:
        """Pause the agent of a bridged call the lost lease ended in the ACD (though they are still
        talking on it) until the bridge ends: `release_held` then resumes them."""
        agent_id = self.bridged.get(call_id)
        if agent_id is None or call_id in self.held:
            return
        self.held[call_id] = agent_id
        log.warning("acd_lease_lost_agent_held", node=self.node_id, call_id=call_id, agent_id=agent_id)
        self._replica.in_background(self._replica.send(AgentPause(agent_id, HELD_REASON)), f"acd-hold-{agent_id}")

    def holding(self, call_id: str) -> str | None:
        """The held agent of `call_id`'s bridge, which just ended (forgotten here)."""
        self.bridged.pop(call_id, None)
        return self.held.pop(call_id, None)

    def _rejoin(self, ticket: QueueTicket, event: str) -> None:
        log.warning(event, node=self.node_id, call_id=ticket.call_id, priority=ticket.request.priority)
        self._replica.in_background(self._requeue(ticket), f"acd-requeue-{ticket.call_id}")

    async def _requeue(self, ticket: QueueTicket) -> None:
        try:
            await self._replica.send(Enqueue(ticket.call_id, ticket.request))
        except Exception as exc:  # the caller must still reach a fallback
            log.error("acd_requeue_failed", call_id=ticket.call_id, error=str(exc))
            if self.tickets.pop(ticket.call_id, None) is not None:
                ticket.deliver([self._unavailable(ticket)])

    def _unavailable(self, ticket: QueueTicket) -> CallerLeft:
        return CallerLeft(ticket.call_id, self.node_id, QueueResult(QueueOutcomeKind.UNAVAILABLE, ticket.queue))

    def started_over(self, old: Distributor, enqueueing: set[str]) -> None:
        """The replica restarted from a snapshot: calls whose leg ended are withdrawn again, this
        node's callers the new state lacks are queued again (their request keeps their priority),
        and offers the new state lacks are withdrawn so the engine stops ringing them."""
        core = self._replica.core
        for call_id, ticket in list(self.tickets.items()):
            if call_id in self.left:
                self._replica.in_background(self._replica.send(Abandon(call_id)), f"acd-abandon-{call_id}")
            elif call_id not in core.callers and call_id not in core.connected and call_id not in enqueueing:
                self._rejoin(ticket, "acd_caller_requeued_after_start_over")
        lost = [
            OfferWithdrawn(offer, WithdrawReason.NODE_LOST)
            for offer_id, offer in old.offers.items()
            if core.offers.get(offer_id) != offer
        ]
        self.route(list(lost))

    def fail_all(self) -> None:
        """The node stopped: every waiting caller gets UNAVAILABLE (the flow's fallback)."""
        for ticket in list(self.tickets.values()):
            ticket.deliver([self._unavailable(ticket)])
        self.tickets.clear()
