"""What an engine process lends its node when it is one worker of several (`ivr serve --workers`, issue 22).

`ivr.web.node` makes worker 0's HTTP port the node's; this module joins it to the engine's parts:
the live state, the agents' phone registrations (a log out sticks on the worker that sees the phone's
refreshes; a call from an agent's phone taken by a worker that does not hold its registration:
`shared_phone_user`), and the prompt line (a recording made on one worker is served by all).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote

import structlog

from ivr.acd import Acd
from ivr.clock import Clock
from ivr.engine.agents import AgentDesk
from ivr.engine.deskcalls import PhoneUser
from ivr.errors import IvrError
from ivr.media.wav import read_wav
from ivr.sip.headers import ROUTE
from ivr.sip.message import NameAddr, Request
from ivr.sip.uri import SipUri
from ivr.voice import PromptLibrary
from ivr.voice.render import Audio
from ivr.web.live import LiveState
from ivr.web.node import NodeFront, NodeParts
from ivr.web.sources import CallStoreView

log = structlog.get_logger(__name__)

RECORDING_RATE_HZ = 8000


class AnnouncedPrompts(PromptLibrary):
    """The prompt library of a worker: a recording the prompt line adds here is announced to the other
    workers (`NodeFront.announce_prompt`), which read the file and serve it too."""

    _node: tuple[NodeFront, asyncio.AbstractEventLoop] | None = None

    def announce_to(self, front: NodeFront) -> None:
        """From now on, announce new recordings through `front` (call on the running loop)."""
        self._node = (front, asyncio.get_running_loop())
        self._announcing: set[asyncio.Task[None]] = set()

    def add_recording(self, dialect: str, prompt_id: str, path: Path, audio: Audio) -> None:
        super().add_recording(dialect, prompt_id, path, audio)
        if self._node is not None:  # the prompt line saves from a thread: announce on the loop
            self._node[1].call_soon_threadsafe(self._announce, dialect, prompt_id)

    def _announce(self, dialect: str, prompt_id: str) -> None:
        assert self._node is not None
        task = asyncio.get_running_loop().create_task(self._node[0].announce_prompt(dialect, prompt_id))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)


def serve_peer_recording(prompts: PromptLibrary, prompts_dir: Path, dialect: str, prompt_id: str) -> None:
    """Serve the recording another worker just made (blocking: reads the file)."""
    if dialect not in prompts.dialects or not prompt_id or "/" in prompt_id or prompt_id.startswith("."):
        log.warning("node_prompt_refused", dialect=dialect, prompt_id=prompt_id)
        return
    path = prompts_dir / dialect / f"{prompt_id}.wav"
    wav = read_wav(path)
    if wav.rate_hz != RECORDING_RATE_HZ:
        log.warning("node_prompt_refused", dialect=dialect, prompt_id=prompt_id, rate_hz=wav.rate_hz)
        return
    PromptLibrary.add_recording(prompts, dialect, prompt_id, path, wav.samples[:, 0].copy())


def node_parts(live: LiveState, clock: Clock, store: CallStoreView, desk: AgentDesk | None,
               prompts: PromptLibrary, prompts_dir: Path) -> NodeParts:
    return NodeParts(
        live, clock, store, phone_of=desk.phone if desk is not None else None,
        prompt_recorded=lambda dialect, prompt_id: serve_peer_recording(prompts, prompts_dir, dialect, prompt_id),
    )  # fmt: skip


def shared_phone_user(local: PhoneUser, acd: Acd) -> PhoneUser:
    """`local` (this worker's registrar), else: the From user's agent has its phone at `source` as the
    ACD says (the phone registered with another worker of the node)."""

    def phone_user(request: Request, source: tuple[str, int], now: float) -> str | None:
        user = local(request, source, now)
        if user is not None:
            return user
        user = request.from_.uri.user or ""
        agent = acd.agent_for_sip_user(user)
        if agent is None or agent not in acd.core.agents:
            return None
        hop = _next_hop(acd.core.agent_view(agent).contact)
        if hop is None or hop.host.strip("[]") != source[0].strip("[]") or (hop.port or 5060) != source[1]:
            return None
        return user

    return phone_user


def _next_hop(contact: str) -> SipUri | None:
    """Where a phone registered at `contact` (`ivr.engine.agents.reachable_at`) sends from: its first
    Route (a proxy's Path), else the contact itself."""
    if not contact:
        return None
    try:
        uri = SipUri.parse(contact)
        for name, value in uri.headers:
            if name.lower() == ROUTE.lower():
                return NameAddr.parse(unquote(value), header=ROUTE).uri
    except IvrError:
        return None
    return uri


__all__ = ["AnnouncedPrompts", "node_parts", "serve_peer_recording", "shared_phone_user"]
