"""Agents as the engine sees them: softphones registering with our registrar log agents in and out of
the ACD, and every change of an agent's state is mirrored into the live view (dashboard, screen-pop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Unpack

import structlog

from ivr import acd
from ivr.acd import Acd, AcdBackend, AcdConfig, MemoryBackend, RedisBackend
from ivr.clock import Clock
from ivr.config import AcdBackendKind, EngineConfig
from ivr.sip.message import Request, Response
from ivr.sip.registrar import AGENT_REALM, Registrar, RegistrarOptions
from ivr.web.live import LiveState
from ivr.web.sources import AgentPresence

log = structlog.get_logger(__name__)


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
            self._on_change(self._agent_of[user], str(bindings[0].contact) if bindings else None)
        return response


class AgentDesk:
    """Logs agents in and out as their phones register, and shows their states to ops."""

    def __init__(self, acd: Acd, live: LiveState, clock: Clock) -> None:
        self._acd = acd
        self._live = live
        self._clock = clock
        self._updates: set[asyncio.Task[None]] = set()

    def registration_changed(self, agent_id: str, contact: str | None) -> None:
        action = self._acd.agent_login(agent_id, contact) if contact else self._acd.agent_logout(agent_id)
        task = asyncio.get_running_loop().create_task(action, name=f"agent-{agent_id}")
        self._updates.add(task)
        task.add_done_callback(self._updates.discard)
        task.add_done_callback(_log_failure)

    def publish(self, _event: object = None) -> None:
        """Mirror agent states into the live view (an ACD listener: runs on every ACD event)."""
        for view in self._acd.agents():
            self._live.agent_changed(view.agent_id, _web_state(view), self._clock.wall(), name=view.agent_id,
                                     region=view.site)


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
        return AgentPresence.ON_BREAK
    return _WEB_STATES[view.state]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("agent_update_failed", error=str(task.exception()))


def acd_backend(cfg: EngineConfig) -> AcdBackend:
    """The ACD's command log: this process alone, or a Redis stream shared by every node."""
    if cfg.acd_backend is AcdBackendKind.REDIS:
        return RedisBackend(cfg.redis_url, node_id=cfg.node_id)
    return MemoryBackend(cfg.node_id)


__all__ = ["AgentDesk", "AgentRegistrar", "acd_backend"]
