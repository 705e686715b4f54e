"""Agents as the engine sees them: softphones registering with our registrar log agents in and out of
the ACD, and every change of an agent's state is mirrored into the live view (dashboard, screen-pop)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Unpack
from urllib.parse import quote

import structlog

from ivr import acd
from ivr.acd import Acd, AcdBackend, AcdConfig, AcdError, MemoryBackend, RedisBackend
from ivr.acd.events import AgentChanged
from ivr.acd.figures import TRANSFER_HOLD_REASON, AgentFigures
from ivr.clock import Clock
from ivr.config import AcdBackendKind, EngineConfig
from ivr.engine.featurecodes import FeatureCall, FeatureCodes, FeatureHandler, FeatureRefused
from ivr.sip.headers import ROUTE
from ivr.sip.message import Request, Response
from ivr.sip.registrar import AGENT_REALM, Binding, Registrar, RegistrarOptions
from ivr.web.live import LiveState
from ivr.web.sources import AgentPresence

log = structlog.get_logger(__name__)

MAX_REASON_CHARS = 40
FIGURES_EVERY_S = 10.0
"""How often today's figures are re-published while nothing else changes (talk and pause time count up)."""


class AgentRegistrar(Registrar):
    """The SIP registrar, telling the ACD when an agent's softphone registers or unregisters."""

    def __init__(self, config: AcdConfig, on_change: Callable[[str, str | None], None], nonce_secret: bytes,
                 **options: Unpack[RegistrarOptions]) -> None:
        users = {a.sip.username: a.sip for a in config.agents.values()}
        super().__init__(AGENT_REALM, users, nonce_secret=nonce_secret, **options)
        self._agent_of = {a.sip.username: a.agent_id for a in config.agents.values()}
        self._on_change = on_change

    def handle(self, request: Request, now: float, source: str | None = None) -> Response:
        response = super().handle(request, now, source)
        user = request.to.uri.user or ""
        if response.status == 200 and user in self._agent_of:
            bindings = self.lookup(user, now)
            self._on_change(self._agent_of[user], reachable_at(bindings[0]) if bindings else None)
        return response

    def phone_user(self, request: Request, source: tuple[str, int], now: float) -> str | None:
        """The agents.yaml user whose registered phone sent `request` (an INVITE): its From user, sent from
        the address that user registered (the contact, or the first proxy of its Path); None otherwise.
        Anyone can write any From: the registered address is what we believe."""
        user = request.from_.uri.user or ""
        if user not in self._agent_of:
            return None
        host, port = source
        for binding in self.lookup(user, now):
            hop = binding.next_hop
            if hop.host.strip("[]") == host.strip("[]") and (hop.port or 5060) == port:
                return user
        return None


def reachable_at(binding: Binding) -> str:
    """Where any node of a cluster rings this phone: its contact, with the Path its REGISTER came through
    as Route URI-headers (RFC 3261 19.1.1; `UserAgent.invite` sends by them). The ACD shares this one
    string with every node, so a node that did not take the registration still calls through the proxy,
    which relays to the address the phone registered from (Kamailio's Path `received`): a phone behind NAT,
    whose contact no engine can reach, gets callers from every node (docs/CLUSTER.md "Agents")."""
    if not binding.path:
        return str(binding.contact)
    route = tuple((ROUTE, quote(value, safe="")) for value in binding.path)
    return str(dataclasses.replace(binding.contact, headers=route))


class AgentDesk:
    """Logs agents in and out as their phones register, carries out their controls (pause, resume, end
    wrap-up, log out: from the API or a feature code), and shows their states and today's figures to ops.

    An agent who logged out by choice stays out while their phone keeps refreshing its registration (a
    refresh would log them in again): until the phone unregisters and registers anew, or `login`."""

    def __init__(self, acd: Acd, live: LiveState, clock: Clock) -> None:
        self._acd = acd
        self._live = live
        self._clock = clock
        self._updates: set[asyncio.Task[None]] = set()
        self._signed_off: set[str] = set()
        self._contacts: dict[str, str] = {}
        self.figures = AgentFigures()

    # -- controls ---------------------------------------------------------------------------------

    async def pause(self, agent_id: str, reason: str = "break") -> None:
        """No offers until `resume`; raises AcdError (UnknownAgent, or an illegal move: logged out)."""
        await self._acd.controls.pause(agent_id, _reason(reason))

    async def resume(self, agent_id: str) -> None:
        """Back to available, also after an automatic pause for missed offers."""
        await self._acd.controls.resume(agent_id)

    async def wrap_up_done(self, agent_id: str) -> None:
        await self._acd.controls.wrap_up_done(agent_id)

    async def logout(self, agent_id: str) -> None:
        await self._acd.controls.logout(agent_id)
        self._signed_off.add(agent_id)

    async def login(self, agent_id: str) -> None:
        """Back in after `logout`, at the phone's registered contact; raises AcdError without one."""
        contact = self._contacts.get(agent_id)
        if contact is None:
            raise AcdError(f"agent {agent_id!r} has no registered phone to log in with")
        self._signed_off.discard(agent_id)
        await self._acd.controls.login(agent_id, contact)

    def phone(self, agent_id: str) -> str | None:
        """The contact of the agent's phone registered here (None: not registered with this process)."""
        return self._contacts.get(agent_id)

    def register_codes(self, codes: FeatureCodes) -> None:
        """The agents' own feature codes: *21 pause (digits after it: a reason code), *22 resume,
        *23 end wrap-up, *24 log out."""
        codes.register("*21", self._code_pause, argument=True, description="pause")
        codes.register("*22", self._code(self.resume, "Welcome back."), description="resume")
        codes.register("*23", self._code(self.wrap_up_done, "Ready for the next call."), description="end wrap-up")
        codes.register("*24", self._code(self.logout, "Logged out. Goodbye."), description="log out")

    async def _code_pause(self, call: FeatureCall) -> str:
        await self._acd_action(call, lambda agent: self.pause(agent, f"code-{call.argument}" if call.argument
                                                              else "break"))
        return "Paused."

    def _code(self, action: Callable[[str], Awaitable[None]], spoken: str) -> FeatureHandler:
        async def handler(call: FeatureCall) -> str:
            await self._acd_action(call, action)
            return spoken

        return handler

    @staticmethod
    async def _acd_action(call: FeatureCall, action: Callable[[str], Awaitable[None]]) -> None:
        if call.agent_id is None:
            raise FeatureRefused(f"{call.user} is not an agent")
        try:
            await action(call.agent_id)
        except AcdError as exc:
            raise FeatureRefused(str(exc)) from exc

    # -- registrations and the live view ------------------------------------------------------------

    def registration_changed(self, agent_id: str, contact: str | None) -> None:
        if contact is None:
            self._contacts.pop(agent_id, None)
            self._signed_off.discard(agent_id)  # the next registration is a fresh login
        else:
            self._contacts[agent_id] = contact
            if agent_id in self._signed_off:
                return  # a refresh of a phone whose agent logged out by choice
        action = self._acd.controls.login(agent_id, contact) if contact else self._acd.controls.logout(agent_id)
        task = asyncio.get_running_loop().create_task(action, name=f"agent-{agent_id}")
        self._updates.add(task)
        task.add_done_callback(self._updates.discard)
        task.add_done_callback(_log_failure)

    async def keep_figures_fresh(self, every_s: float = FIGURES_EVERY_S) -> None:
        """Publish now and then between ACD events, so a talk or pause still going counts up on the dashboard."""
        while True:
            await self._clock.sleep(every_s)
            self.publish()

    def publish(self, event: object = None) -> None:
        """Mirror agent states and today's figures into the live view (an ACD listener: runs on every ACD event)."""
        if isinstance(event, AgentChanged):
            self.figures.apply(event)
        wall, now = self._clock.wall(), self._acd.clock.now()
        for view in self._acd.agents():
            name = self._acd.config.agents[view.agent_id].name or view.agent_id
            self._live.agent_changed(view.agent_id, _web_state(view), wall, name=name, region=view.site,
                                     pause_reason=view.pause_reason,
                                     today=self.figures.today(view.agent_id, wall, now))


_WEB_STATES = {
    acd.AgentState.IDLE: AgentPresence.AVAILABLE,
    acd.AgentState.RINGING: AgentPresence.RINGING,
    acd.AgentState.IN_CALL: AgentPresence.IN_CALL,
    acd.AgentState.WRAP_UP: AgentPresence.WRAP_UP,
}


def _web_state(view: acd.AgentView) -> AgentPresence:
    """The ACD keeps status (logged in? paused?) apart from state (idle, ringing...); ops see one word."""
    if view.status is acd.AgentStatus.LOGGED_OUT:
        return AgentPresence.LOGGED_OUT
    if view.status is acd.AgentStatus.PAUSED:
        # Held for a call transferred to them (ivr.engine.transfers): talking, not on a break.
        return AgentPresence.IN_CALL if view.pause_reason == TRANSFER_HOLD_REASON else AgentPresence.ON_BREAK
    return _WEB_STATES[view.state]




def _reason(text: str) -> str:
    """A pause reason as ops read it: short, printable, one line."""
    cleaned = "".join(c for c in text.strip() if c.isprintable())[:MAX_REASON_CHARS]
    return cleaned or "break"


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("agent_update_failed", error=str(task.exception()))


def acd_backend(cfg: EngineConfig) -> AcdBackend:
    """The ACD's command log: this process alone, or a Redis stream shared by every node."""
    if cfg.acd_backend is AcdBackendKind.REDIS:
        return RedisBackend(cfg.redis_url, node_id=cfg.node_id)
    return MemoryBackend(cfg.node_id)


__all__ = ["AgentDesk", "AgentRegistrar", "acd_backend"]
