"""Handing a caller to a human: the ACD's offers become calls to agents, bridged to the caller.

While the caller waits they hear music on hold, their position and expected wait every
`announce_every_s` in their dialect, and may press 1 to be called back on a number they confirm by keys
(ivr.engine.callback); a number that cannot be called back leaves them their place in the queue.
An offer rings the agent's registered contact with the context in X-IVR headers; the first agent to
answer is bridged (B2BUA: our RTP relays between the two legs).

The caller's leg is a `MediaLeg` (play, hold, bridge, keys, hang-up); the handoff is its only key
reader while the caller is queued or talking to the agent, and learns of the hang-up from it alone.
A caller who hangs up while agents ring is withdrawn at once: every ringing INVITE is cancelled
(CANCEL goes out now, not at the agent's ring timeout), the ACD is told the caller abandoned, and no
ring failure is charged to the agents, who did nothing wrong.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

import structlog

from ivr.acd import Acd, Offer, QueueTicket, RingFailure
from ivr.call import AgentTransfer, CallEnded, Prompt, QueueOutcomeKind, QueueRequest, QueueResult
from ivr.callback_policy import CallbackPolicy
from ivr.clock import Clock
from ivr.engine.callback import CallbackDialogue
from ivr.engine.context import agent_headers
from ivr.engine.dialer import Dialer, DialFailed
from ivr.engine.events import AgentBridged, CallEvents, CallQueued, QueueLeft
from ivr.engine.legs import MediaLeg
from ivr.engine.transfers import AgentTransfers, Talk, ToQueue

log = structlog.get_logger(__name__)

CALLBACK_KEY = "1"
CALLBACK_ANSWER_TIMEOUT_S = 45.0
"""How long a callback rings the caller (the agent is already on the line, waiting)."""


def x_ivr_headers(offer: Offer) -> list[tuple[str, str]]:
    """The context an agent's phone (or CTI) reads from the INVITE; free text is percent-encoded UTF-8."""
    return agent_headers(offer.call_id, offer.queue, offer.dialect, offer.context)


class QueueService(Protocol):
    """Serves a call waiting for a human (what `SipCall.enqueue` hands the caller's leg to)."""

    async def serve(self, leg: MediaLeg, request: QueueRequest, *, caller: str) -> QueueResult: ...


class _Due(enum.Enum):
    ANNOUNCE = "announce"
    """Time to tell the caller their position and expected wait."""


Answered = tuple[Offer, MediaLeg]


class QueueHandoff:
    """The engine's `QueueService`: waits, announcements, callbacks, ringing agents, bridging."""

    def __init__(
        self,
        acd: Acd,
        dialer: Dialer,
        events: CallEvents,
        clock: Clock,
        callback_uri: Callable[[str], str],
        callback_policy: CallbackPolicy | None = None,
        transfers: AgentTransfers | None = None,
    ) -> None:
        """`callback_policy`: which numbers may be called back, how often (default: `CallbackRules()`);
        `transfers`: agents handing callers on (default: one over the same ACD, dialer and `callback_uri`)."""
        self._acd = acd
        self._callback_policy = callback_policy or CallbackPolicy()
        self._callback_dialogue = CallbackDialogue(self._callback_policy, clock)
        self._dialer = dialer
        self._events = events
        self._clock = clock
        self._callback_uri = callback_uri
        self._tasks: set[asyncio.Task[Any]] = set()
        self.transfers = transfers or AgentTransfers(acd, dialer, events, clock, callback_uri)

    # -- the caller's wait ------------------------------------------------------------------------

    async def serve(self, leg: MediaLeg, request: QueueRequest, *, caller: str) -> QueueResult:
        chain: list[AgentTransfer] = []
        while True:
            served = await self._serve_once(leg, request, caller, chain)
            if isinstance(served, QueueResult):
                return replace(served, transfers=tuple(chain)) if chain else served
            request = served  # an agent sent the caller (back) to a queue

    async def _serve_once(self, leg: MediaLeg, request: QueueRequest, caller: str,
                          chain: list[AgentTransfer]) -> QueueResult | QueueRequest:
        ticket = await self._acd.enqueue(request, leg.call_id)
        if ticket.result is not None:
            return ticket.result
        started = self._clock.now()
        self._events.emit(CallQueued(leg.call_id, request.queue, self._clock.wall(), request.priority, request.context))
        keys: asyncio.Queue[str] = asyncio.Queue()
        try:
            with leg.take_keys(keys.put_nowait):
                result = await self._wait(leg, ticket, request, keys, caller, started, chain)
        except (CallEnded, asyncio.CancelledError):
            # Every ring for this caller was started by this task and is cancelled by now (`_ring`), so
            # the offers the ACD withdraws have had their CANCEL sent already.
            withdrawn = await self._acd.abandon(leg.call_id)
            log.info("caller_withdrawn", queue=ticket.queue, offers_withdrawn=len(withdrawn))
            raise
        finally:
            leg.unhold()
        if isinstance(result, QueueRequest):
            return result
        if result.kind is not QueueOutcomeKind.ANSWERED:  # an answered caller's wait ended at the answer
            self._events.emit(QueueLeft(leg.call_id, request.queue, result.kind, self._clock.now() - started))
        return result

    async def _wait(
        self,
        leg: MediaLeg,
        ticket: QueueTicket,
        request: QueueRequest,
        keys: asyncio.Queue[str],
        caller: str,
        started: float,
        chain: list[AgentTransfer],
    ) -> QueueResult | QueueRequest:
        while True:
            leg.hold()
            outcome = await self._next(leg, ticket, keys)
            if isinstance(outcome, QueueResult):
                return outcome
            if outcome is _Due.ANNOUNCE:
                await self._announce(leg, ticket, request.dialect)
            elif outcome == CALLBACK_KEY:
                result = await self._leave_callback(leg, ticket, keys, request.dialect, caller)
                if result is not None:
                    return result
            elif isinstance(outcome, tuple):
                answered = await self._ring(leg, outcome)
                if answered is not None:
                    return await self._bridge(leg, *answered, queued_s=self._clock.now() - started, chain=chain)

    async def _next(
        self, leg: MediaLeg, ticket: QueueTicket, keys: asyncio.Queue[str]
    ) -> tuple[Offer, ...] | QueueResult | _Due | str:
        """What happens next: offers, the end of the wait, an announcement due, or a key."""
        offer = asyncio.ensure_future(ticket.wait_for_offer())
        key = asyncio.ensure_future(keys.get())
        gone = asyncio.ensure_future(leg.wait_ended())
        announce = asyncio.ensure_future(self._clock.sleep(ticket.announce_every_s()))
        waiting = {offer, key, gone, announce}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waiting:
                future.cancel()
        if gone.done() and not gone.cancelled():
            raise CallEnded(f"call {leg.call_id} ended while queued")
        if offer.done() and not offer.cancelled():
            return offer.result()
        if key.done() and not key.cancelled():
            return key.result()
        return _Due.ANNOUNCE

    async def _announce(self, leg: MediaLeg, ticket: QueueTicket, dialect: str) -> None:
        position = ticket.position()
        if position is None:
            return
        wait_s = ticket.estimated_wait_s() or 60.0
        leg.unhold()
        await leg.play([Prompt("queue_position", "", dialect,
                               {"position": str(position), "wait_minutes": str(max(1, round(wait_s / 60)))})])

    async def _leave_callback(
        self, leg: MediaLeg, ticket: QueueTicket, keys: asyncio.Queue[str], dialect: str, presented: str
    ) -> QueueResult | None:
        # The presented number is From's unless a trunk asserted it: calling back anything anyone wrote
        # there is toll fraud, so the caller confirms (or keys) a number the rules allow (ivr.engine.callback).
        number = await self._callback_dialogue.agree(leg, keys, dialect, presented)
        if number is None:
            return None
        place = await self._acd.request_callback(leg.call_id, number)
        if place is None:
            return None
        self._callback_policy.record(number, self._clock.wall().date())
        leg.unhold()
        await leg.play([Prompt("callback_saved", "", dialect,
                               {"number": number, "phone": self._callback_policy.readback(number)})])
        log.info("callback_registered", queue=ticket.queue, place=place)
        return QueueResult(QueueOutcomeKind.CALLBACK, ticket.queue, callback_number=number)

    # -- ringing and bridging ---------------------------------------------------------------------

    async def _ring(self, caller: MediaLeg | None, offers: tuple[Offer, ...]) -> Answered | None:
        """Ring every offered agent at once (ring-all) and keep the first who answers.

        Raises CallEnded, with every ring cancelled, as soon as the caller's leg ends."""
        if caller is not None and caller.ended:
            raise CallEnded(f"call {caller.call_id} ended before its agents were rung")
        pending = {asyncio.ensure_future(self._ring_one(offer)) for offer in offers}
        gone = asyncio.ensure_future(caller.wait_ended()) if caller is not None else None
        winner: Answered | None = None
        try:
            while pending and winner is None:
                done, pending = await asyncio.wait(
                    pending | ({gone} if gone else set()), return_when=asyncio.FIRST_COMPLETED
                )
                if gone is not None:
                    pending.discard(gone)
                    if gone in done:
                        assert caller is not None
                        pending |= done - {gone}  # an agent who answered just now is hung up too
                        log.info("caller_left_while_ringing", call_id=caller.call_id, agents=len(pending))
                        raise CallEnded(f"call {caller.call_id} ended while agents rang")
                for attempt in done:
                    answered = attempt.result()
                    if answered is None:
                        continue
                    if winner is None and await self._acd.ring_answered(answered[0]):
                        winner = answered
                    else:
                        await answered[1].aclose()
        except asyncio.CancelledError:
            if winner is None:
                raise
        finally:
            if gone is not None:
                gone.cancel()
            await self._stop_ringing(pending)
        return winner

    async def _stop_ringing(self, attempts: set[asyncio.Task[Answered | None]]) -> None:
        """Cancel the rings still going (each sends its CANCEL at once); hang up any that answered."""
        for attempt in attempts:
            attempt.cancel()
        for result in await asyncio.gather(*attempts, return_exceptions=True):
            if isinstance(result, tuple):
                await result[1].aclose()

    async def _ring_one(self, offer: Offer) -> Answered | None:
        try:
            leg = await self._dialer.dial(offer.contact, timeout_s=offer.ring_timeout_s,
                                          label=f"{offer.call_id}-agent", headers=x_ivr_headers(offer))
        except DialFailed as exc:
            reason = RingFailure.NO_ANSWER if exc.timed_out else RingFailure.REJECTED
            await self._acd.ring_failed(offer, reason)
            log.info("agent_not_answering", agent=offer.agent_id, reason=reason.value,
                     calls_missed=self._acd.agent(offer.agent_id).calls_missed)
            return None
        return offer, leg

    async def _bridge(self, caller: MediaLeg, offer: Offer, agent: MediaLeg, *, queued_s: float,
                      chain: list[AgentTransfer]) -> QueueResult | QueueRequest:
        caller.unhold()
        caller.bridge(agent)
        self._events.emit(AgentBridged(caller.call_id, offer.agent_id, offer.queue, self._clock.wall()))
        self._events.emit(QueueLeft(caller.call_id, offer.queue, QueueOutcomeKind.ANSWERED, queued_s))
        talk = Talk(caller, agent, offer.agent_id, offer.request, self._clock.now(), acd_agent=offer.agent_id,
                    chain=chain)
        try:
            ended = await self.transfers.talk(talk)  # agents may hand the caller on (REFER)
        finally:
            await self.transfers.finish(talk)
        if isinstance(ended, ToQueue):
            return ended.request
        return QueueResult(QueueOutcomeKind.ANSWERED, offer.queue, wait_s=offer.wait_s, agent_id=talk.agent_id)

    # -- callbacks --------------------------------------------------------------------------------

    async def run_callbacks(self) -> None:
        """Place the callbacks the ACD hands this node: the agent first, then the caller, then bridge."""
        try:
            while True:
                offer = await self._acd.next_callback_offer()
                self._spawn(self._callback(offer), name=f"callback-{offer.call_id}")
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _callback(self, offer: Offer) -> None:
        answered = await self._ring(None, (offer,))
        if answered is None:
            return
        agent = answered[1]
        number = offer.callback_number or ""
        try:
            caller = await self._dialer.dial(self._callback_uri(number), timeout_s=CALLBACK_ANSWER_TIMEOUT_S,
                                             label=f"{offer.call_id}-callback")
            try:
                caller.bridge(agent)
                log.info("callback_bridged", agent=offer.agent_id, number=number, call_id=offer.call_id)
                await _first_ended(caller, agent)
            finally:
                caller.unbridge()
                await caller.aclose()
        except DialFailed as exc:
            log.info("callback_unanswered", status=exc.status)
        finally:
            await agent.aclose()
            await self._acd.call_ended(offer.agent_id, offer.call_id)


async def _first_ended(*legs: MediaLeg) -> None:
    """Return when the first of `legs` ends (either party hung up)."""
    ended = [asyncio.ensure_future(leg.wait_ended()) for leg in legs]
    try:
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in ended:
            future.cancel()


__all__ = ["CALLBACK_KEY", "QueueHandoff", "QueueService", "x_ivr_headers"]
