"""The async ACD facade the call layer, the SIP registrar and the web API call.

`Acd` turns each call into a command, appends it to the backend's log and waits until its own
apply task has applied that entry to the local `Distributor` (the single writer); the events that
entry produced are the answer. The apply task also routes events to `QueueTicket`s (the caller's
view), to callback consumers and to listeners. A timer task appends a `Tick` when the distributor's
next deadline (ring timeout, wrap-up end, max wait, night hours...) comes; with a shared backend a
heartbeat task renews this node's lease.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ivr.acd.backend import AcdBackend
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
    LogEntry,
    RequestCallback,
    RingAnswered,
    RingFailed,
    StartDispatch,
    Tick,
)
from ivr.acd.config import AcdConfig
from ivr.acd.distributor import AgentView, Distributor, QueueStats
from ivr.acd.errors import AcdError, BackendError, UnknownAgent, UnknownQueue, UnknownSite
from ivr.acd.events import (
    AcdEvent,
    CallbackRegistered,
    CallbackSuggested,
    CallerEnqueued,
    CallerLeft,
    CallerMoved,
    CommandRejected,
    DispatchChanged,
    DispatchRecord,
    NodeLost,
    Offer,
    OfferFailed,
    OfferKind,
    OfferMade,
    OfferWithdrawn,
    RejectReason,
    RingFailure,
    SitesWidened,
)
from ivr.call import QueueOutcomeKind, QueueRequest, QueueResult
from ivr.clock import Clock, FakeClock

log = structlog.get_logger(__name__)

HELD_REASON = "on a call (node lease lost)"
"""Pause reason of an agent still talking on a call the ACD ended when this node's lease ran out."""

TicketUpdate = OfferMade | OfferWithdrawn | OfferFailed | CallerMoved | SitesWidened | CallbackSuggested | CallerLeft
Listener = Callable[[AcdEvent], None]

_RAISE: dict[RejectReason, type[AcdError]] = {
    RejectReason.UNKNOWN_QUEUE: UnknownQueue,
    RejectReason.UNKNOWN_AGENT: UnknownAgent,
    RejectReason.UNKNOWN_SITE: UnknownSite,
    RejectReason.ILLEGAL: AcdError,
    RejectReason.INVALID: AcdError,
    RejectReason.DUPLICATE_CALL: AcdError,
}


class EpochClock:
    """A clock every node of a cluster agrees on (Unix time), for the shared Redis backend."""

    def now(self) -> float:
        return time.time()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


def _call_of(event: AcdEvent) -> str | None:
    if isinstance(event, OfferMade | OfferWithdrawn | OfferFailed):
        return event.offer.call_id
    if isinstance(event, CallerMoved | SitesWidened | CallbackSuggested | CallerLeft):
        return event.call_id
    return None


class QueueTicket:
    """One caller's place in a queue, as the call layer holds it while playing music on hold."""

    def __init__(self, acd: Acd, call_id: str, request: QueueRequest) -> None:
        self._acd = acd
        self.call_id = call_id
        self.request = request
        self.result: QueueResult | None = None
        """Set when the wait is over (answered, abandoned, overflowed, callback, unavailable)."""
        self._updates: asyncio.Queue[list[TicketUpdate]] = asyncio.Queue()

    @property
    def queue(self) -> str:
        """The queue the caller is in now (it changes when the caller overflows to another queue)."""
        caller = self._acd.core.callers.get(self.call_id)
        return self.request.queue if caller is None else caller.queue

    def position(self) -> int | None:
        """1-based place in the queue; None once the wait is over."""
        return self._acd.core.position(self.call_id)

    def estimated_wait_s(self) -> float | None:
        return self._acd.core.estimated_wait_s(self.call_id)

    def announce_every_s(self) -> float:
        return self._acd.config.queues[self.queue].announce_every_s

    def _deliver(self, updates: list[TicketUpdate]) -> None:
        for update in updates:
            if isinstance(update, CallerLeft):
                self.result = update.result
        self._updates.put_nowait(updates)

    async def next_updates(self) -> list[TicketUpdate]:
        """What changed for this caller in one step; after the final result, that result again."""
        if self._updates.empty() and self.result is not None:
            return [CallerLeft(self.call_id, self._acd.node_id, self.result)]
        return await self._updates.get()

    async def wait_for_offer(self) -> tuple[Offer, ...] | QueueResult:
        """The next agents to ring (several at once for ring-all), or the end of the wait."""
        while True:
            updates = await self.next_updates()
            offers = tuple(u.offer for u in updates if isinstance(u, OfferMade))
            if offers:
                return offers
            for update in updates:
                if isinstance(update, CallerLeft):
                    return update.result


class Acd:
    """The automatic call distributor of one engine node. Use `async with Acd(...) as acd`."""

    def __init__(
        self,
        config: AcdConfig,
        backend: AcdBackend,
        clock: Clock,
        *,
        core: Distributor | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.clock = clock
        self.core = core or Distributor(config, lease_s=config.lease_s if backend.shared else None)
        self._tickets: dict[str, QueueTicket] = {}
        self._pending: dict[str, asyncio.Future[list[AcdEvent]]] = {}
        self._cids = itertools.count(1)
        self._callback_offers: asyncio.Queue[Offer] = asyncio.Queue()
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._armed: float | None = None
        self._timer_idle = asyncio.Event()
        """Set while the timer task sleeps on the distributor's current next deadline."""
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        """Commands sent on the node's own behalf (re-queueing, holding agents), kept referenced."""
        self._bridged: dict[str, str] = {}
        """This node's calls bridged to an agent now: call id → agent id."""
        self._held: dict[str, str] = {}
        """Bridged calls whose agent is paused because a lost lease ended the call in the ACD."""
        self._failure: BaseException | None = None
        self._closing = False

    @property
    def node_id(self) -> str:
        return self.backend.node_id

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.backend.open()
        node = self.node_id
        self._tasks = [
            asyncio.create_task(self._apply_loop(), name=f"acd-apply-{node}"),
            asyncio.create_task(self._timer_loop(), name=f"acd-timer-{node}"),
        ]
        if self.backend.shared:
            self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"acd-heartbeat-{node}"))
        await self._send(Heartbeat())
        log.info("acd_started", node=node, shared=self.backend.shared)

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await self.backend.close()  # also ends a read the backend may be blocked in
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    async def __aenter__(self) -> Acd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with every event this node applies (synchronously: it must not block)."""
        self._listeners.append(listener)

    # --- the call layer -----------------------------------------------------------------------

    async def enqueue(self, request: QueueRequest, call_id: str) -> QueueTicket:
        """Put the caller in `request.queue`; raises UnknownQueue. The ticket may already be over
        (UNAVAILABLE, or OVERFLOWED when the queue is full): check `ticket.result`."""
        ticket = QueueTicket(self, call_id, request)
        if call_id in self._tickets:
            raise AcdError(f"call {call_id!r} is already queued on node {self.node_id!r}")
        self._tickets[call_id] = ticket
        try:
            events = await self._send(_enqueue_command(call_id, request))
            self._raise_rejected(events)
        except BaseException:
            self._tickets.pop(call_id, None)
            raise
        for event in events:
            if isinstance(event, CallerEnqueued):
                log.info("call_enqueued", call_id=call_id, queue=event.queue, position=event.position)
        return ticket

    async def ring_answered(self, offer: Offer) -> bool:
        """The agent answered. False: the offer was withdrawn first (hang the agent leg up)."""
        events = await self._send(RingAnswered(offer.offer_id))
        answered = not any(isinstance(e, CommandRejected) for e in events)
        if answered:
            self._bridged[offer.call_id] = offer.agent_id
        return answered

    async def ring_failed(self, offer: Offer, reason: RingFailure = RingFailure.NO_ANSWER) -> None:
        """The agent did not answer (or was busy, rejected, unreachable); a withdrawn offer is ignored."""
        await self._send(RingFailed(offer.offer_id, reason))

    async def call_ended(self, agent_id: str, call_id: str | None = None) -> None:
        """The agent's call ended (either side hung up): the agent goes to wrap-up."""
        if call_id is not None:
            self._bridged.pop(call_id, None)
            if self._held.pop(call_id, None) is not None:
                await self._release_held(agent_id)
                return
        self._raise_rejected(await self._send(CallEnded(agent_id, call_id)), lost_races=False)

    async def abandon(self, call_id: str) -> None:
        """The caller hung up (while waiting, ringing, or talking); unknown calls are ignored."""
        await self._send(Abandon(call_id))

    async def request_callback(self, call_id: str, number: str) -> int | None:
        """The caller leaves `number` and keeps the place; returns the place (None if already gone)."""
        events = await self._send(RequestCallback(call_id, number))
        self._raise_rejected(events)
        return next((e.position for e in events if isinstance(e, CallbackRegistered)), None)

    async def next_callback_offer(self) -> Offer:
        """The next callback this node must place: ring `offer.contact`, then dial the caller."""
        return await self._callback_offers.get()

    # --- agents -------------------------------------------------------------------------------

    def agent_for_sip_user(self, username: str) -> str | None:
        agent = self.config.agent_by_sip_username(username)
        return None if agent is None else agent.agent_id

    async def agent_login(self, agent_id: str, contact: str) -> None:
        """Log in (or refresh the contact of) an agent; the registrar calls it on REGISTER."""
        self._raise_rejected(await self._send(AgentLogin(agent_id, contact)))

    async def agent_logout(self, agent_id: str) -> None:
        self._raise_rejected(await self._send(AgentLogout(agent_id)))

    async def agent_pause(self, agent_id: str, reason: str = "break") -> None:
        self._raise_rejected(await self._send(AgentPause(agent_id, reason)))

    async def agent_resume(self, agent_id: str) -> None:
        self._raise_rejected(await self._send(AgentResume(agent_id)))

    def agent(self, agent_id: str) -> AgentView:
        if agent_id not in self.core.agents:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return self.core.agent_view(agent_id)

    def agents(self) -> list[AgentView]:
        return [self.core.agent_view(a) for a in self.core.agents]

    def queue_stats(self, queue: str) -> QueueStats:
        return self.core.queue_stats(queue)

    # --- sites --------------------------------------------------------------------------------

    async def dispatch(
        self,
        region: str,
        queues: tuple[str, ...] | list[str] = (),
        helper_sites: tuple[str, ...] | list[str] = (),
        until: datetime | None = None,
        *,
        reason: str = "",
        by: str = "",
    ) -> DispatchRecord:
        """Let agents of `helper_sites` serve `queues` (default: all of `region`'s) until `until`."""
        command = StartDispatch(region, tuple(queues), tuple(helper_sites), until, reason, by)
        events = await self._send(command)
        self._raise_rejected(events)
        change = next(e for e in events if isinstance(e, DispatchChanged))
        log.info("dispatch_started", dispatch_id=change.record.dispatch_id, region=region, by=by)
        return change.record

    async def end_dispatch(self, dispatch_id: str) -> None:
        self._raise_rejected(await self._send(EndDispatch(dispatch_id)))

    def dispatch_log(self) -> list[DispatchChanged]:
        """Every dispatch and night-rule change so far, oldest first."""
        return self.core.dispatch_log()

    def active_dispatches(self) -> list[DispatchRecord]:
        return list(self.core.dispatch.active.values())

    async def settled(self) -> None:
        """Wait until every command this node sent has been applied and the timer sleeps on the
        next deadline (tests driving a FakeClock step from one settled point to the next)."""
        while True:
            await asyncio.sleep(0)
            if self._failure is not None:
                return
            if self._pending:
                await asyncio.wait(list(self._pending.values()))
            elif not self._timer_idle.is_set():
                await self._timer_idle.wait()
            else:
                await asyncio.sleep(0)
                if not self._pending and self._timer_idle.is_set():
                    return

    # --- plumbing -----------------------------------------------------------------------------

    def _raise_rejected(self, events: list[AcdEvent], *, lost_races: bool = True) -> None:
        for event in events:
            if isinstance(event, CommandRejected):
                error = _RAISE.get(event.reason)
                if error is not None:
                    raise error(event.message)
                if not lost_races:
                    raise AcdError(event.message)

    async def _send(self, command: Command, at: float | None = None) -> list[AcdEvent]:
        if self._failure is not None:
            raise BackendError(f"ACD node {self.node_id!r} stopped: {self._failure}")
        cid = f"{self.node_id}#{next(self._cids)}"
        now = self.clock.now()
        stamp = now if at is None else max(now, at)
        entry = LogEntry(
            node=self.node_id,
            cid=cid,
            now=stamp,
            wall=self.clock.wall() + timedelta(seconds=stamp - now),
            command=command,
        )
        future: asyncio.Future[list[AcdEvent]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = future
        try:
            await self.backend.append(entry)
        except BaseException:
            self._pending.pop(cid, None)
            raise
        return await future

    async def _apply_loop(self) -> None:
        after: str | None = None
        try:
            while True:
                for entry in await self.backend.read(after):
                    after = entry.entry_id
                    self._apply(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the node cannot go on: fail every waiter so calls reach a fallback
            if self._closing:
                return
            log.error("acd_apply_failed", node=self.node_id, exc_info=True)
            self._failure = exc
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BackendError(f"ACD node {self.node_id!r} stopped: {exc}"))
            for ticket in list(self._tickets.values()):
                result = QueueResult(QueueOutcomeKind.UNAVAILABLE, ticket.queue)
                ticket._deliver([CallerLeft(ticket.call_id, self.node_id, result)])
            self._tickets.clear()

    def _apply(self, entry: LogEntry) -> None:
        events = self.core.apply(entry.command, node=entry.node, now=entry.now, wall=entry.wall)
        per_ticket: dict[str, list[TicketUpdate]] = {}
        for event in events:
            call_id = _call_of(event)
            if call_id is not None and call_id in self._tickets:
                assert isinstance(event, TicketUpdate)
                per_ticket.setdefault(call_id, []).append(event)
            if (
                isinstance(event, OfferMade)
                and event.offer.kind is OfferKind.CALLBACK
                and event.offer.node == self.node_id
            ):
                self._callback_offers.put_nowait(event.offer)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a broken dashboard must not stop the queues
                    log.error("acd_listener_failed", event=type(event).__name__, exc_info=True)
        lost_here = self._lost_here(events)
        rejoining = {call_id for call_id in lost_here if call_id in self._tickets}
        for call_id, updates in per_ticket.items():
            if call_id in rejoining:
                continue  # this node is alive after all: the caller is put back, not dropped
            ticket = self._tickets[call_id]
            ticket._deliver(updates)
            if ticket.result is not None:
                del self._tickets[call_id]
        for call_id in rejoining:
            self._rejoin(self._tickets[call_id])
        for call_id in lost_here:
            self._hold_bridged_agent(call_id)
        if entry.node == self.node_id:
            future = self._pending.pop(entry.cid, None)
            if future is not None and not future.done():
                future.set_result(events)
        if self.core.next_deadline() != self._armed:
            self._timer_idle.clear()
            self._wake.set()

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
        talking on it) until the bridge ends: `call_ended` then resumes them."""
        agent_id = self._bridged.get(call_id)
        if agent_id is None or call_id in self._held:
            return
        self._held[call_id] = agent_id
        log.warning("acd_lease_lost_agent_held", node=self.node_id, call_id=call_id, agent_id=agent_id)
        self._in_background(self._send(AgentPause(agent_id, HELD_REASON)), f"acd-hold-{agent_id}")

    async def _release_held(self, agent_id: str) -> None:
        if agent_id in self.core.agents and self.core.agent_view(agent_id).pause_reason == HELD_REASON:
            self._raise_rejected(await self._send(AgentResume(agent_id)), lost_races=False)

    def _in_background(self, work: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _rejoin(self, ticket: QueueTicket) -> None:
        log.warning("acd_lease_lost_caller_requeued", node=self.node_id, call_id=ticket.call_id)
        self._in_background(self._requeue(ticket), f"acd-requeue-{ticket.call_id}")

    async def _requeue(self, ticket: QueueTicket) -> None:
        try:
            await self._send(_enqueue_command(ticket.call_id, ticket.request))
        except Exception as exc:  # the caller must still reach a fallback
            log.error("acd_requeue_failed", call_id=ticket.call_id, error=str(exc))
            if self._tickets.pop(ticket.call_id, None) is not None:
                ticket._deliver([CallerLeft(ticket.call_id, self.node_id,
                                            QueueResult(QueueOutcomeKind.UNAVAILABLE, ticket.queue))])

    async def _timer_loop(self) -> None:
        while True:
            self._wake.clear()
            deadline = self._armed = self.core.next_deadline()
            if deadline is None:
                self._timer_idle.set()
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
            waker = asyncio.ensure_future(self._wake.wait())
            self._timer_idle.set()
            try:
                done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._timer_idle.clear()
                sleeper.cancel()
                waker.cancel()
            if sleeper in done and self.core.next_deadline() == deadline:
                await self._send(Tick(), at=deadline)

    async def _heartbeat_loop(self) -> None:
        period = self.config.lease_s / 3
        while True:
            await self.clock.sleep_until(self.clock.now() + period)
            await self._send(Heartbeat())


def _enqueue_command(call_id: str, request: QueueRequest) -> Enqueue:
    return Enqueue(
        call_id=call_id,
        queue=request.queue,
        priority=request.priority,
        skills=dict(request.skills),
        dialect=request.dialect,
        context=dict(request.context),
    )


async def run_clock(clock: FakeClock, seconds: float, *nodes: Acd) -> None:
    """Advance a FakeClock by `seconds`, stopping at every ACD deadline on the way so each node's
    timer fires at its exact time (trio's autojump, for tests and benchmarks)."""
    target = clock.now() + seconds
    while True:
        for node in nodes:
            await node.settled()
        due = [d for d in (n.core.next_deadline() for n in nodes) if d is not None and d <= target]
        step = min(due, default=target) - clock.now()
        await clock.advance(max(step, 0.0))
        if not due:
            break
    for node in nodes:
        await node.settled()
