"""Handing a caller to a human: the ACD's offers become SIP calls to agents, bridged to the caller.

While the caller waits they hear music on hold, their position and expected wait every
`announce_every_s` in their dialect, and may press 1 to be called back without losing their place.
An offer rings the agent's registered contact with the context in X-IVR headers; the first agent to
answer is bridged (B2BUA: our RTP relays between the two legs). Agents log in by REGISTER.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from ivr import acd
from ivr.acd import (
    Acd,
    AcdBackend,
    AcdConfig,
    EpochClock,
    MemoryBackend,
    Offer,
    QueueTicket,
    RedisBackend,
    RingFailure,
)
from ivr.acd import load_config as load_acd_config
from ivr.call import CallEnded, Prompt, QueueOutcomeKind, QueueRequest, QueueResult
from ivr.config import AcdBackendKind, EngineConfig
from ivr.engine.dispatch import AcdDispatcher
from ivr.rtp import HoldMode, MediaParams, MediaSession
from ivr.sip.calls import CallFailed
from ivr.sip.leg import CallLeg
from ivr.sip.message import Request, Response
from ivr.sip.registrar import Registrar
from ivr.sip.sdp import SessionDescription, make_offer, negotiated_codec
from ivr.web.sources import AgentState

if TYPE_CHECKING:
    from ivr.engine.app import Engine
    from ivr.engine.sipcall import SipCall

log = structlog.get_logger(__name__)

CALLBACK_KEY = "1"
CALLBACK_ANSWER_TIMEOUT_S = 45.0
"""How long a callback rings the caller (the agent is already on the line, waiting)."""
X_IVR_FIELDS: Mapping[str, str] = {
    "intent": "X-IVR-Intent",
    "confidence": "X-IVR-Confidence",
    "transcript": "X-IVR-Transcript",
    "breakpoint": "X-IVR-Breakpoint",
}


def x_ivr_headers(offer: Offer) -> list[tuple[str, str]]:
    """The context an agent's phone (or CTI) reads from the INVITE; free text is percent-encoded UTF-8."""
    headers = [
        ("X-IVR-Call-ID", offer.call_id),
        ("X-IVR-Queue", offer.queue),
        ("X-IVR-Dialect", offer.dialect),
    ]
    for key, header in X_IVR_FIELDS.items():
        value = offer.context.get(key)
        if value:
            headers.append((header, urllib.parse.quote(str(value), safe="")))
    return headers


class AgentRegistrar(Registrar):
    """The SIP registrar, telling the ACD when an agent's softphone registers or unregisters."""

    def __init__(self, config: AcdConfig, on_change: Callable[[str, str | None], None], nonce_secret: bytes) -> None:
        users = {a.sip.username: a.sip.password for a in config.agents.values()}
        super().__init__("ivr", users, nonce_secret=nonce_secret)
        self._agent_of = {a.sip.username: a.agent_id for a in config.agents.values()}
        self._on_change = on_change

    def handle(self, request: Request, now: float) -> Response:
        response = super().handle(request, now)
        user = request.to.uri.user or ""
        if response.status == 200 and user in self._agent_of:
            bindings = self.lookup(user, now)
            self._on_change(self._agent_of[user], str(bindings[0].contact) if bindings else None)
        return response


class QueueHandoff:
    """The engine's `QueueService`: waits, announcements, callbacks, ringing agents, bridging."""

    def __init__(self, engine: Engine, acd: Acd) -> None:
        self._engine = engine
        self._acd = acd
        self._agent_legs: dict[str, CallLeg] = {}

    # -- agents -----------------------------------------------------------------------------------

    def registration_changed(self, agent_id: str, contact: str | None) -> None:
        action = self._acd.agent_login(agent_id, contact) if contact else self._acd.agent_logout(agent_id)
        task = asyncio.get_running_loop().create_task(action, name=f"agent-{agent_id}")
        task.add_done_callback(_log_failure)

    def publish_agents(self, _event: object = None) -> None:
        """Mirror agent states into the live view (dashboard, screen-pop)."""
        for view in self._acd.agents():
            self._engine.live.agent_changed(
                view.agent_id, _web_state(view), self._engine.clock.wall(), name=view.agent_id, region=view.site
            )

    # -- the caller's wait ------------------------------------------------------------------------

    async def serve(self, call: SipCall, request: QueueRequest) -> QueueResult:
        ticket = await self._acd.enqueue(request, call.call_id)
        if ticket.result is not None:
            return ticket.result
        started = self._engine.clock.now()
        self._engine.live.call_enqueued(
            call.call_id, request.queue, self._engine.clock.wall(), context=request.context, priority=request.priority
        )
        try:
            result = await self._wait(call, ticket, request)
        except (CallEnded, asyncio.CancelledError):
            await self._acd.abandon(call.call_id)
            raise
        finally:
            if call.media.held is not None:
                call.media.unhold()
        self._engine.metrics.queue_wait_seconds.labels(request.queue).observe(self._engine.clock.now() - started)
        return result

    async def _wait(self, call: SipCall, ticket: QueueTicket, request: QueueRequest) -> QueueResult:
        keys: asyncio.Queue[str] = asyncio.Queue()
        unsubscribe = call.media.on_dtmf(lambda event: keys.put_nowait(event.digit))
        try:
            while True:
                call.media.hold(HoldMode.MUSIC)
                outcome = await self._next(call, ticket, keys)
                if isinstance(outcome, QueueResult):
                    return outcome
                if outcome == "announce":
                    await self._announce(call, ticket, request.dialect)
                elif outcome == CALLBACK_KEY:
                    result = await self._leave_callback(call, ticket, request.dialect)
                    if result is not None:
                        return result
                elif isinstance(outcome, tuple):
                    answered = await self._ring(call, outcome)
                    if answered is not None:
                        offer, leg, media = answered
                        return await self._bridge(call, ticket, offer, leg, media)
        finally:
            unsubscribe()

    async def _next(
        self, call: SipCall, ticket: QueueTicket, keys: asyncio.Queue[str]
    ) -> tuple[Offer, ...] | QueueResult | str:
        """What happens next: offers, the end of the wait, an announcement due, or a key."""
        waiting = {
            asyncio.ensure_future(ticket.wait_for_offer()),
            asyncio.ensure_future(keys.get()),
            asyncio.ensure_future(call.leg.wait_ended()),
        }
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=ticket.announce_every_s(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for future in waiting:
                future.cancel()
        if not done:
            return "announce"
        for future in done:
            value = future.result()
            if isinstance(value, (tuple, QueueResult)):
                return value
        if call.leg.ended:
            raise CallEnded(f"call {call.call_id} ended while queued")
        return next(str(f.result()) for f in done)

    async def _announce(self, call: SipCall, ticket: QueueTicket, dialect: str) -> None:
        position = ticket.position()
        if position is None:
            return
        wait_s = ticket.estimated_wait_s() or 60.0
        call.media.unhold()
        await call.play([Prompt("queue_position", "", dialect,
                                {"position": str(position), "wait_minutes": str(max(1, round(wait_s / 60)))})])

    async def _leave_callback(self, call: SipCall, ticket: QueueTicket, dialect: str) -> QueueResult | None:
        number = call.caller
        place = await self._acd.request_callback(call.call_id, number)
        if place is None:
            return None
        call.media.unhold()
        await call.play([Prompt("callback_saved", "", dialect, {"number": number})])
        log.info("callback_registered", queue=ticket.queue, place=place)
        return QueueResult(QueueOutcomeKind.CALLBACK, ticket.queue, callback_number=number)

    # -- ringing and bridging ---------------------------------------------------------------------

    async def _ring(
        self, call: SipCall | None, offers: tuple[Offer, ...]
    ) -> tuple[Offer, CallLeg, MediaSession] | None:
        """Ring every offered agent at once (ring-all) and keep the first who answers."""
        attempts = [asyncio.ensure_future(self._ring_one(offer)) for offer in offers]
        winner: tuple[Offer, CallLeg, MediaSession] | None = None
        try:
            for next_done in asyncio.as_completed(attempts):
                answered = await next_done
                if answered is None:
                    continue
                if winner is None and await self._acd.ring_answered(answered[0]):
                    winner = answered
                    for attempt in attempts:
                        attempt.cancel()
                else:
                    await answered[1].bye()
                    self._engine.media.release(answered[2])
        except asyncio.CancelledError:
            if winner is None:
                raise
        return winner

    async def _ring_one(self, offer: Offer) -> tuple[Offer, CallLeg, MediaSession] | None:
        media = await self._engine.media.open_session(call_id=f"{offer.call_id}-agent")
        sdp = make_offer(local_address=self._engine.config.sip_host, local_port=media.local_port,
                         session_id=secrets.randbelow(2**31))
        outgoing = self._engine.ua.invite(offer.contact, sdp.serialize(), headers=x_ivr_headers(offer),
                                          from_user="95519")
        try:
            async with asyncio.timeout(offer.ring_timeout_s):
                leg = await outgoing.answered()
        except (TimeoutError, CallFailed, asyncio.CancelledError) as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            with contextlib.suppress(Exception):
                await asyncio.shield(outgoing.cancel())
            self._engine.media.release(media)
            reason = RingFailure.NO_ANSWER if isinstance(exc, TimeoutError) else RingFailure.REJECTED
            if not cancelled:
                await self._acd.ring_failed(offer, reason)
                log.info("agent_not_answering", agent=offer.agent_id, reason=reason.value,
                         calls_missed=self._acd.agent(offer.agent_id).calls_missed)
                return None
            raise
        remote = negotiated_codec(SessionDescription.parse(leg.remote_sdp))
        media.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                payload_type=remote.payload_type, telephone_event_pt=remote.dtmf_payload_type))
        return offer, leg, media

    async def _bridge(
        self, call: SipCall, ticket: QueueTicket, offer: Offer, leg: CallLeg, media: MediaSession
    ) -> QueueResult:
        call.media.unhold()
        call.media.bridge(media)
        self._engine.live.call_answered(call.call_id, offer.agent_id, self._engine.clock.wall())
        log.info("call_bridged", agent=offer.agent_id, queue=offer.queue)
        ended = [asyncio.ensure_future(call.leg.wait_ended()), asyncio.ensure_future(leg.wait_ended())]
        try:
            await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in ended:
                future.cancel()
            call.media.unbridge()
            if not leg.ended:
                await leg.bye()
            self._engine.media.release(media)
            await self._acd.call_ended(offer.agent_id, call.call_id)
        return QueueResult(QueueOutcomeKind.ANSWERED, offer.queue, wait_s=offer.wait_s, agent_id=offer.agent_id)

    async def run_callbacks(self) -> None:
        """Place the callbacks the ACD hands this node: the agent first, then the caller, then bridge."""
        while True:
            offer = await self._acd.next_callback_offer()
            asyncio.get_running_loop().create_task(self._callback(offer), name=f"callback-{offer.call_id}")

    async def _callback(self, offer: Offer) -> None:
        answered = await self._ring(None, (offer,))
        if answered is None:
            return
        _, agent_leg, agent_media = answered
        caller_media = await self._engine.media.open_session(call_id=f"{offer.call_id}-callback")
        sdp = make_offer(local_address=self._engine.config.sip_host, local_port=caller_media.local_port,
                         session_id=secrets.randbelow(2**31))
        number = offer.callback_number or ""
        outgoing = self._engine.ua.invite(self._engine.config.callback_uri(number), sdp.serialize(),
                                          from_user="95519")
        try:
            try:
                async with asyncio.timeout(CALLBACK_ANSWER_TIMEOUT_S):
                    caller_leg = await outgoing.answered()
            except TimeoutError:
                await outgoing.cancel()
                raise CallFailed(408, "callback not answered") from None
            remote = negotiated_codec(SessionDescription.parse(caller_leg.remote_sdp))
            caller_media.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                           payload_type=remote.payload_type))
            caller_media.bridge(agent_media)
            log.info("callback_bridged", agent=offer.agent_id, number=number, call_id=offer.call_id)
            ended = [asyncio.ensure_future(caller_leg.wait_ended()), asyncio.ensure_future(agent_leg.wait_ended())]
            try:
                await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for future in ended:
                    future.cancel()
            await caller_leg.bye()
        except CallFailed as exc:
            log.info("callback_unanswered", status=exc.status)
        finally:
            await agent_leg.bye()
            self._engine.media.release(caller_media)
            self._engine.media.release(agent_media)
            await self._acd.call_ended(offer.agent_id, offer.call_id)


_WEB_STATES = {
    acd.AgentState.IDLE: AgentState.AVAILABLE,
    acd.AgentState.RINGING: AgentState.RINGING,
    acd.AgentState.IN_CALL: AgentState.IN_CALL,
    acd.AgentState.WRAP_UP: AgentState.WRAP_UP,
}


def _web_state(view: acd.AgentView) -> AgentState:
    """The ACD keeps status (logged in? paused?) apart from state (idle, ringing...); ops see one word."""
    if view.status is acd.AgentStatus.LOGGED_OUT:
        return AgentState.LOGGED_OUT
    if view.status is acd.AgentStatus.PAUSED:
        return AgentState.ON_BREAK
    return _WEB_STATES[view.state]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("agent_update_failed", error=str(task.exception()))


def acd_backend(cfg: EngineConfig) -> AcdBackend:
    """The ACD's command log: this process alone, or a Redis stream shared by every node."""
    if cfg.acd_backend is AcdBackendKind.REDIS:
        return RedisBackend(cfg.redis_url, node_id=cfg.node_id)
    return MemoryBackend(cfg.node_id)


async def start_acd(engine: Engine) -> tuple[QueueHandoff | None, Registrar | None, AcdDispatcher | None]:
    """The ACD from config/agents.yaml and config/queues.yaml; without them, no queues (flows go on).
    Also the web API's emergency dispatcher over it, recording the ACD's own changes in the store."""
    cfg = engine.config
    if not cfg.agents_file.exists() or not cfg.queues_file.exists():
        log.warning("acd_not_configured", agents=str(cfg.agents_file), queues=str(cfg.queues_file))
        return None, None, None
    acd_config = load_acd_config(cfg.agents_file, cfg.queues_file)
    acd = Acd(acd_config, acd_backend(cfg), EpochClock())
    dispatcher = AcdDispatcher(acd, engine.store)  # before start: hears night hours already on
    await acd.start()
    handoff = QueueHandoff(engine, acd)
    acd.add_listener(handoff.publish_agents)
    handoff.publish_agents()
    registrar = AgentRegistrar(acd_config, handoff.registration_changed, secrets.token_bytes(16))
    callbacks = asyncio.get_running_loop().create_task(handoff.run_callbacks(), name="acd-callbacks")

    async def close() -> None:
        callbacks.cancel()
        await asyncio.gather(callbacks, return_exceptions=True)
        await acd.close()

    engine.closers.append(close)
    return handoff, registrar, dispatcher


__all__ = ["AgentRegistrar", "QueueHandoff", "acd_backend", "start_acd", "x_ivr_headers"]
