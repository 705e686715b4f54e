"""The async ACD facade the call layer, the SIP registrar and the web API call.

`Acd` turns each call into a command for its `Replica` (append to the log, wait until this node
applied it: the events are the answer) and keeps the caller's side in its `TicketDesk` (tickets,
callback offers, listeners); agents' login, pause and wrap-up are its `AgentControls`
(`acd.controls`). See `ivr.acd.replica` for time, the bounded log and store outages.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from ivr.acd.backend import AcdBackend
from ivr.acd.commands import (
    Abandon,
    AgentCallEnded,
    AgentResume,
    EndDispatch,
    Enqueue,
    RequestCallback,
    RingAnswered,
    RingFailed,
    StartDispatch,
)
from ivr.acd.config import AcdConfig
from ivr.acd.controls import AgentControls
from ivr.acd.distributor import AgentView, Distributor, QueueStats
from ivr.acd.errors import AcdError, UnknownAgent, raise_rejected
from ivr.acd.events import (
    CallbackRegistered,
    CallerEnqueued,
    CommandRejected,
    DispatchChanged,
    Offer,
    OfferWithdrawn,
    RingFailure,
    WithdrawReason,
)
from ivr.acd.replica import OUTAGE_S, SNAPSHOT_EVERY, Replica
from ivr.acd.tickets import HELD_REASON, Listener, QueueTicket, TicketDesk, TicketUpdate
from ivr.call import QueueRequest
from ivr.clock import Clock
from ivr.dispatching import Dispatch, DispatchRequest

__all__ = ["HELD_REASON", "Acd", "QueueTicket", "SteppedClock", "TicketUpdate", "run_clock"]

log = structlog.get_logger(__name__)


class SteppedClock(Clock, Protocol):
    """A clock a test moves by hand (`ivr.clock.FakeClock`)."""

    async def advance(self, seconds: float) -> None: ...


class Acd:
    """The automatic call distributor of one engine node. Use `async with Acd(...) as acd`.

    `clock` is the engine's one clock; `snapshot_every` and `outage_s` bound the shared log and the
    wait for its store (see `ivr.acd.replica`).
    """

    def __init__(
        self,
        config: AcdConfig,
        backend: AcdBackend,
        clock: Clock,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self.config = config
        self.backend = backend
        self.clock = clock
        self.replica = Replica(
            config,
            backend,
            clock,
            on_events=lambda events: self.desk.route(events),
            on_start_over=lambda old, enqueueing: self.desk.started_over(old, enqueueing),
            on_failure=lambda _exc: self.desk.fail_all(),
            snapshot_every=snapshot_every,
            outage_s=outage_s,
        )
        self.desk = TicketDesk(self.replica)
        self.controls = AgentControls(self.replica)
        """Login, logout, pause, resume and the end of wrap-up (see `ivr.acd.controls`)."""

    @property
    def node_id(self) -> str:
        return self.backend.node_id

    @property
    def core(self) -> Distributor:
        """This node's copy of the distributor (read only: only the log changes it)."""
        return self.replica.core

    def local_deadline(self) -> float | None:
        """The distributor's next deadline in `clock.now()` terms (None: nothing is due)."""
        return self.replica.local_deadline()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.replica.start()
        log.info("acd_started", node=self.node_id, shared=self.backend.shared, position=self.replica.after)

    async def close(self) -> None:
        await self.replica.close()

    async def __aenter__(self) -> Acd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with every event this node applies (synchronously: it must not block)."""
        self.desk.listeners.append(listener)

    async def settled(self) -> None:
        """Wait until every command this node sent has been applied and the timer sleeps on the
        next deadline (tests driving a FakeClock step from one settled point to the next)."""
        await self.replica.settled()

    # --- the call layer -----------------------------------------------------------------------

    async def enqueue(self, request: QueueRequest, call_id: str) -> QueueTicket:
        """Put the caller in `request.queue`; raises UnknownQueue. The ticket may already be over
        (UNAVAILABLE, or OVERFLOWED when the queue is full): check `ticket.result`."""
        if call_id in self.desk.tickets:
            raise AcdError(f"call {call_id!r} is already queued on node {self.node_id!r}")
        ticket = self.desk.tickets[call_id] = QueueTicket(self.replica, call_id, request)
        try:
            events = await self.replica.send(Enqueue(call_id, request))
            raise_rejected(events)
        except BaseException:
            self.desk.tickets.pop(call_id, None)
            raise
        for event in events:
            if isinstance(event, CallerEnqueued):
                log.info("call_enqueued", call_id=call_id, queue=event.queue, position=event.position)
        return ticket

    async def ring_answered(self, offer: Offer) -> bool:
        """The agent answered. False: the offer was withdrawn first (hang the agent leg up)."""
        events = await self.replica.send(RingAnswered(offer.offer_id))
        answered = not any(isinstance(e, CommandRejected) for e in events)
        if answered:
            self.desk.bridged[offer.call_id] = offer.agent_id
        return answered

    async def ring_failed(self, offer: Offer, reason: RingFailure = RingFailure.NO_ANSWER) -> None:
        """The agent did not answer (or was busy, rejected, unreachable); a withdrawn offer is ignored."""
        await self.replica.send(RingFailed(offer.offer_id, reason))

    async def call_ended(self, agent_id: str, call_id: str | None = None) -> None:
        """The agent's call ended (either side hung up): the agent goes to wrap-up."""
        if call_id is not None and self.desk.holding(call_id) is not None:
            if agent_id in self.core.agents and self.core.agent_view(agent_id).pause_reason == HELD_REASON:
                raise_rejected(await self.replica.send(AgentResume(agent_id)), lost_races=False)
            return
        raise_rejected(await self.replica.send(AgentCallEnded(agent_id, call_id)), lost_races=False)

    async def abandon(self, call_id: str) -> tuple[Offer, ...]:
        """The caller's leg ended (BYE, CANCEL, timeout) wherever they are: waiting, being rung, or
        choosing a callback. Returns the offers withdrawn for them: the engine CANCELs every one of
        those agent INVITEs at once (an offer it never started ringing it just forgets). Their agents
        go back to available with no miss counted; no offer is made for this caller afterwards, and
        the ticket hands out none. A caller bridged to an agent ends that call instead (returns ()).
        Unknown calls are ignored. Should the node start over from a snapshot before the Abandon is
        applied (a Redis restart), it is sent again."""
        ticket = self.desk.tickets.get(call_id)
        if ticket is not None:
            ticket.leg_ended = True
            self.desk.left.add(call_id)
        events = await self.replica.send(Abandon(call_id))
        return tuple(
            e.offer for e in events if isinstance(e, OfferWithdrawn) and e.reason is WithdrawReason.CALLER_LEFT
        )

    async def request_callback(self, call_id: str, number: str) -> int | None:
        """The caller leaves `number` and keeps the place; returns the place (None if already gone)."""
        events = await self.replica.send(RequestCallback(call_id, number))
        raise_rejected(events)
        return next((e.position for e in events if isinstance(e, CallbackRegistered)), None)

    async def next_callback_offer(self) -> Offer:
        """The next callback this node must place: ring `offer.contact`, then dial the caller."""
        return await self.desk.callback_offers.get()

    # --- agents -------------------------------------------------------------------------------

    def agent_for_sip_user(self, username: str) -> str | None:
        agent = self.config.agent_by_sip_username(username)
        return None if agent is None else agent.agent_id

    def agent(self, agent_id: str) -> AgentView:
        if agent_id not in self.core.agents:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return self.core.agent_view(agent_id)

    def agents(self) -> list[AgentView]:
        return [self.core.agent_view(a) for a in self.core.agents]

    def queue_stats(self, queue: str) -> QueueStats:
        return self.core.queue_stats(queue)

    # --- sites --------------------------------------------------------------------------------

    async def dispatch(self, request: DispatchRequest) -> Dispatch:
        """Let agents of `request.helper_sites` serve its queues (default: all of its region's)
        until `request.until`; raises naming the unknown region, queue or site."""
        events = await self.replica.send(StartDispatch(request))
        raise_rejected(events)
        change = next(e for e in events if isinstance(e, DispatchChanged))
        log.info(
            "dispatch_started", dispatch_id=change.dispatch.dispatch_id, region=request.region, by=request.requested_by
        )
        return change.dispatch

    async def end_dispatch(self, dispatch_id: str) -> None:
        raise_rejected(await self.replica.send(EndDispatch(dispatch_id)))

    def dispatch_log(self) -> list[DispatchChanged]:
        """Every dispatch and night-rule change so far, oldest first."""
        return self.core.dispatch_log()

    def active_dispatches(self) -> list[Dispatch]:
        return list(self.core.dispatch.active.values())


async def run_clock(clock: SteppedClock, seconds: float, *nodes: Acd) -> None:
    """Advance a FakeClock by `seconds`, stopping at every ACD deadline on the way so each node's
    timer fires at its exact time (trio's autojump, for tests and benchmarks)."""
    target = clock.now() + seconds
    while True:
        for node in nodes:
            await node.settled()
        due = [d for d in (n.local_deadline() for n in nodes) if d is not None and d <= target]
        step = min(due, default=target) - clock.now()
        await clock.advance(max(step, 0.0))
        if not due:
            break
    for node in nodes:
        await node.settled()
