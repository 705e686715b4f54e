"""Agents handing a caller on: blind transfer (REFER) and attended transfer (REFER with Replaces).

We are a B2BUA: the caller talks to us and we relay to the agent's leg. So when an agent's phone sends
REFER in its leg (RFC 3515), the caller stays with us; we place (or find) the new leg and re-bridge:

* blind, `Refer-To: <sip:a2@ivr>` / `<sip:claims@ivr>` / `<sip:95588@ivr>`: the caller hears music on
  hold; an agent target is rung directly (held in the ACD meanwhile so no queue offers them a call),
  a queue target takes the caller back to the queue (the handoff queues them again, context kept),
  a number is dialled through `callback_uri`. The agent's phone gets NOTIFYs (sipfrag: 100 at once,
  the final status at the end); on success the first agent's leg is released (wrap-up), on failure the
  caller goes back to that agent if they are still there, else to the queue they came from;
* attended: the agent first calls the target from the same phone (a consultation: `DeskCalls` hands
  it to `consult`, which rings the target with the caller's context in X-IVR headers and bridges the
  two agents), then REFERs the caller's leg with `Refer-To: <sip:a2@ivr?Replaces=...>` naming the
  consultation dialog (RFC 3891). We join the caller to the target's leg of that consultation and end
  both of the first agent's legs.

Every hand-over is an `AgentTransfer` in the caller's `QueueResult`: the record's chain of agents.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ivr.acd import Acd, AcdError, AgentState, AgentStatus
from ivr.acd.figures import TRANSFER_HOLD_REASON
from ivr.call import AgentTransfer, QueueRequest
from ivr.callback_policy import CallbackPolicy
from ivr.clock import Clock
from ivr.engine.context import agent_headers
from ivr.engine.dialer import Dialer, DialFailed
from ivr.engine.events import AgentBridged, CallEvents
from ivr.engine.legs import MediaLeg
from ivr.sip.events import ReferReceived
from ivr.sip.refer import ReferError, ReferTarget, Replaces, target_user
from ivr.sipua.transfer import Notify

log = structlog.get_logger(__name__)

TRANSFER_RING_S = 30.0
"""How long a blind transfer rings its target before the caller goes back."""
MAX_CONSULTATIONS = 1000


class TargetKind(enum.Enum):
    AGENT = "agent"
    QUEUE = "queue"
    NUMBER = "number"


@dataclass(slots=True, frozen=True)
class Target:
    kind: TargetKind
    name: str
    """Agent id, queue id or number."""


@dataclass(slots=True, frozen=True)
class ToQueue:
    """The talk is over for the agents: the caller goes (back) to `request.queue`."""

    request: QueueRequest


@dataclass(slots=True, frozen=True)
class _Asked:
    target: ReferTarget
    notify: Notify


@dataclass(slots=True, eq=False)
class Talk:
    """A caller bridged to an agent through us, as agents hand them on."""

    caller: MediaLeg
    agent: MediaLeg
    agent_id: str
    request: QueueRequest
    started: float
    acd_agent: str | None
    """The agent the ACD bridged: told `call_ended` when they leave (None once done)."""
    held_agent: str | None = None
    """An agent taken by a direct transfer: held in the ACD until they leave."""
    chain: list[AgentTransfer] = field(default_factory=list)
    asked: asyncio.Queue[_Asked] = field(default_factory=asyncio.Queue)


@dataclass(slots=True, eq=False)
class Consultation:
    """An agent's call to another agent about the caller they talk to (the first half of an attended transfer)."""

    from_agent: str
    leg: MediaLeg
    """The consulting agent's call to us."""
    key: tuple[str, str, str]
    """That call's dialog (Call-ID, our tag, their tag): what a Replaces names."""
    target_leg: MediaLeg
    target_agent: str
    taken: bool = False
    """Set when a transfer joined the caller to `target_leg`: it belongs to that talk now."""
    done: asyncio.Event = field(default_factory=asyncio.Event)


class AgentTransfers:
    """Talks and consultations of this node; `refer_received` is the user agents' REFER listener."""

    def __init__(self, acd: Acd, dialer: Dialer, events: CallEvents, clock: Clock,
                 number_uri: Callable[[str], str], numbers: tuple[str, ...] | None = None) -> None:
        """`number_uri`: the URI that dials a number (the trunk); `numbers`: regular expressions a number
        target must match whole (None: any number)."""
        self._numbers = None if numbers is None else tuple(re.compile(p) for p in numbers)
        self._national = CallbackPolicy()
        self._acd = acd
        self._dialer = dialer
        self._events = events
        self._clock = clock
        self._number_uri = number_uri
        self._talks: dict[str, Talk] = {}
        """By the Call-ID of the agent's leg (where their REFER arrives)."""
        self._consultations: dict[str, Consultation] = {}
        """By the Call-ID of the consultation call."""
        self._notifying: set[asyncio.Future[None]] = set()

    # -- REFERs ---------------------------------------------------------------------------------------

    def refer_received(self, call_id: str, event: ReferReceived, notify: Notify) -> None:
        """A peer REFERred one of our legs (already answered 202, NOTIFY 100 on its way)."""
        talk = self._talks.get(call_id)
        try:
            target = ReferTarget.parse(event.refer_to)
        except ReferError as exc:
            log.info("transfer_refused", call_id=call_id, reason=str(exc))
            self._spawn(notify(400, "Bad Refer-To"))
            return
        if talk is None:
            log.info("transfer_refused", call_id=call_id, reason="not an agent's call with a caller")
            self._spawn(notify(603, "Declined"))
            return
        talk.asked.put_nowait(_Asked(target, notify))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    def talk_of(self, agent_id: str) -> Talk | None:
        """The caller `agent_id` is talking to on this node, if any."""
        return next((t for t in self._talks.values() if t.agent_id == agent_id), None)

    # -- the talk -------------------------------------------------------------------------------------

    async def talk(self, talk: Talk) -> ToQueue | None:
        """Relay until the caller or the last agent hangs up (None), or an agent sends the caller to a
        queue (`ToQueue`); the legs of agents who handed the caller on are released on the way."""
        while True:
            self._talks[talk.agent.call_id] = talk
            try:
                asked = await self._next(talk)
            finally:
                self._talks.pop(talk.agent.call_id, None)
            if asked is None:
                return None
            if asked.target.replaces is not None:
                await self._attended(talk, asked)
                continue
            outcome = await self._blind(talk, asked)
            if outcome is not None:
                return outcome

    async def finish(self, talk: Talk) -> None:
        """The talk is over: unbridge, hang up the last agent and release them in the ACD."""
        talk.caller.unbridge()
        await talk.agent.aclose()
        await self._release(talk)

    async def _next(self, talk: Talk) -> _Asked | None:
        caller = asyncio.ensure_future(talk.caller.wait_ended())
        agent = asyncio.ensure_future(talk.agent.wait_ended())
        asked = asyncio.ensure_future(talk.asked.get())
        try:
            await asyncio.wait((caller, agent, asked), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (caller, agent, asked):
                future.cancel()
        if asked.done() and not asked.cancelled():
            return asked.result()
        return None

    def resolve(self, target: ReferTarget) -> Target | None:
        """What a Refer-To names: an agent (id or SIP user), a queue, or a number; None for anything else."""
        user = target_user(target.uri)
        config = self._acd.config
        if user in config.agents:
            return Target(TargetKind.AGENT, user)
        agent_id = self._acd.agent_for_sip_user(user)
        if agent_id is not None:
            return Target(TargetKind.AGENT, agent_id)
        if user in config.queues:
            return Target(TargetKind.QUEUE, user)
        digits = user.lstrip("+")
        if digits.isdigit() and 3 <= len(digits) <= 20:
            return Target(TargetKind.NUMBER, user)
        return None

    async def _blind(self, talk: Talk, asked: _Asked) -> ToQueue | None:
        target = self.resolve(asked.target)
        by = talk.agent_id
        if target is None:
            log.info("transfer_refused", agent=by, target=asked.target.uri, reason="unknown target")
            await asked.notify(404, "Not Found")
            return None
        if target.kind is TargetKind.NUMBER and not self._number_allowed(target.name):
            log.info("transfer_refused", agent=by, target=target.name, reason="number not in transfer_numbers")
            await asked.notify(403, "Forbidden")
            return None
        if target.kind is TargetKind.QUEUE:
            await asked.notify(200, "OK")
            self._record(talk, by, "blind", target, 200)
            await self._hand_over(talk)
            return ToQueue(self._requeue(talk, target.name, by))
        talk.caller.unbridge()
        talk.caller.hold()
        leg, status = await self._ring(talk, target, {"Transferred-By": by, "Transfer": "blind"})
        talk.caller.unhold()
        if leg is None:
            await asked.notify(status, "Transfer Failed")
            log.info("transfer_failed", agent=by, target=target.name, status=status)
            if talk.caller.ended:
                return None  # the caller hung up while the target rang: the talk is over
            if not talk.agent.ended:
                talk.caller.bridge(talk.agent)  # the first agent keeps the caller
                return None
            self._record(talk, by, "blind", target, status)
            await self._hand_over(talk)
            return ToQueue(self._requeue(talk, talk.request.queue, by))
        await asked.notify(200, "OK")
        self._record(talk, by, "blind", target, 200)
        await self._hand_over(talk)
        self._join(talk, leg, target)
        return None

    def _number_allowed(self, number: str) -> bool:
        national = self._national.normalize(number)  # +86/0086 folded, as callback numbers are
        return self._numbers is None or any(p.fullmatch(national) for p in self._numbers)

    async def _attended(self, talk: Talk, asked: _Asked) -> None:
        replaces = asked.target.replaces
        assert replaces is not None
        consultation = self._consultation(replaces)
        if consultation is None or consultation.from_agent != talk.agent_id or consultation.target_leg.ended:
            log.info("transfer_refused", agent=talk.agent_id, reason="no such consultation", replaces=str(replaces))
            await asked.notify(481, "Call Does Not Exist")
            return
        by = talk.agent_id
        target = Target(TargetKind.AGENT, consultation.target_agent)
        consultation.taken = True
        consultation.leg.unbridge()
        consultation.target_leg.unbridge()
        await asked.notify(200, "OK")
        self._record(talk, by, "attended", target, 200)
        await self._hand_over(talk)
        consultation.done.set()
        self._join(talk, consultation.target_leg, target)

    def _consultation(self, replaces: Replaces) -> Consultation | None:
        found = self._consultations.get(replaces.call_id)
        if found is None:
            return None
        _, ours, theirs = found.key  # either orientation of the tags: phones differ on whose is "to"
        return found if {replaces.to_tag, replaces.from_tag} == {ours, theirs} else None

    def _join(self, talk: Talk, leg: MediaLeg, target: Target) -> None:
        talk.agent, talk.agent_id = leg, target.name
        talk.held_agent = target.name if target.kind is TargetKind.AGENT else None
        talk.caller.bridge(leg)
        self._events.emit(AgentBridged(talk.caller.call_id, target.name, talk.request.queue, self._clock.wall()))

    def _record(self, talk: Talk, by: str, kind: str, target: Target, status: int) -> None:
        at_s = round(self._clock.now() - talk.started, 1)
        talk.chain.append(AgentTransfer(by, kind, target.name, target.kind.value, status, at_s))
        log.info("agent_transferred", call_id=talk.caller.call_id, by=by, kind=kind, to=target.name,
                 to_kind=target.kind.value, status=status)

    def _requeue(self, talk: Talk, queue: str, by: str) -> QueueRequest:
        request = talk.request
        context = {**request.context, "transferred_by": by}
        return QueueRequest(queue=queue, priority=request.priority,
                            skills=request.skills if queue == request.queue else {}, dialect=request.dialect,
                            context=context, recording=request.recording)

    async def _hand_over(self, talk: Talk) -> None:
        """The current agent is done with the caller: their leg is hung up and the ACD releases them."""
        talk.caller.unbridge()
        await talk.agent.aclose()
        await self._release(talk)

    async def _release(self, talk: Talk) -> None:
        call_id = talk.caller.call_id
        if talk.acd_agent is not None:
            agent, talk.acd_agent = talk.acd_agent, None
            await self._acd.call_ended(agent, call_id)
        if talk.held_agent is not None:
            agent, talk.held_agent = talk.held_agent, None
            await self._unhold(agent)

    # -- ringing an agent or number directly --------------------------------------------------------

    async def _ring(self, talk: Talk, target: Target, extra: dict[str, str]) -> tuple[MediaLeg | None, int]:
        """Ring `target` for `talk`'s caller; (the answered leg, 200) or (None, the failure status)."""
        request = talk.request
        headers = agent_headers(talk.caller.call_id, request.queue, request.dialect, request.context, extra)
        return await self.dial_target(target, headers, until=talk.caller)

    async def dial_target(self, target: Target, headers: list[tuple[str, str]],
                          until: MediaLeg) -> tuple[MediaLeg | None, int]:
        """Dial an agent (held in the ACD while theirs) or a number; gives up when `until` ends."""
        if target.kind is TargetKind.AGENT:
            status = await self._hold(target.name)
            if status != 200:
                return None, status
            uri = self._acd.agent(target.name).contact
        else:
            uri = self._number_uri(target.name)
        dialling = asyncio.ensure_future(self._dialer.dial(uri, timeout_s=TRANSFER_RING_S,
                                                           label=f"{until.call_id}-to-{target.name}",
                                                           headers=headers))
        gone = asyncio.ensure_future(until.wait_ended())
        try:
            await asyncio.wait((dialling, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        status = 487
        if not dialling.done():
            dialling.cancel()
            await asyncio.gather(dialling, return_exceptions=True)
        elif isinstance(dialling.exception(), DialFailed):
            failure = dialling.exception()
            assert isinstance(failure, DialFailed)
            status = 480 if failure.timed_out else failure.status
        else:
            leg = dialling.result()
            if not until.ended:
                return leg, 200
            await leg.aclose()
        if target.kind is TargetKind.AGENT:
            await self._unhold(target.name)
        return None, status

    async def _hold(self, agent_id: str) -> int:
        """Take a free agent out of the queues while a transferred call is theirs; a SIP status."""
        view = self._acd.agent(agent_id)
        if view.status is AgentStatus.LOGGED_OUT or not view.contact:
            return 480
        if view.status is AgentStatus.PAUSED or view.state is not AgentState.IDLE:
            return 486
        try:
            await self._acd.controls.pause(agent_id, TRANSFER_HOLD_REASON)
        except AcdError:
            return 486
        return 200

    async def _unhold(self, agent_id: str) -> None:
        view = self._acd.agent(agent_id)
        if view.status is AgentStatus.PAUSED and view.pause_reason == TRANSFER_HOLD_REASON:
            try:
                await self._acd.controls.resume(agent_id)
            except AcdError as exc:
                log.warning("transfer_unhold_failed", agent=agent_id, error=str(exc))

    # -- consultations (the first half of an attended transfer) ---------------------------------------

    async def consult(self, from_agent: str, leg: MediaLeg, key: tuple[str, str, str], target: Target) -> None:
        """`from_agent` called `target` from their phone (`leg`, answered): ring the target with the context
        of the caller `from_agent` talks to, bridge the two, and keep it until either hangs up or an
        attended transfer takes the target's leg for the caller."""
        talk = self.talk_of(from_agent)
        extra = {"Consulted-By": from_agent}
        if talk is not None:
            request = talk.request
            headers = agent_headers(talk.caller.call_id, request.queue, request.dialect, request.context, extra)
        else:  # an agent calling a colleague with no caller on hand: nothing to carry but who calls
            headers = [("X-IVR-Consulted-By", from_agent)]
        if len(self._consultations) >= MAX_CONSULTATIONS:
            await leg.aclose()
            return
        answered, status = await self.dial_target(target, headers, until=leg)
        if answered is None:
            log.info("consultation_failed", agent=from_agent, target=target.name, status=status)
            await leg.aclose()
            return
        consultation = Consultation(from_agent, leg, key, answered, target.name)
        self._consultations[key[0]] = consultation
        log.info("consultation_bridged", agent=from_agent, target=target.name, consultation=key[0], our_tag=key[1],
                 their_tag=key[2], about=talk.caller.call_id if talk is not None else None)
        leg.bridge(answered)
        waits = [asyncio.ensure_future(w) for w in (leg.wait_ended(), answered.wait_ended(), consultation.done.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            self._consultations.pop(key[0], None)
            if not consultation.taken:
                leg.unbridge()
                await answered.aclose()
                if target.kind is TargetKind.AGENT:
                    await self._unhold(target.name)
            await leg.aclose()


__all__ = ["AgentTransfers", "Consultation", "Talk", "Target", "TargetKind", "ToQueue"]
