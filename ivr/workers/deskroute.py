"""Calls from agents' phones go to the worker that holds the caller they are about.

The kernel gives an agent's phone to one worker of the node (by its address); the caller that agent
talks to may be held by another. A consultation (the phone dials a colleague: the first half of an
attended transfer) must reach the worker that holds that caller, to carry the caller's context and to
link the transfer; so must a supervisor's feature code on an agent (`*33a7`: barge in on a7's call).
`DeskRoute` says which worker, from the ACD every worker shares: the agent's current call and the ACD
node (`holder`) that holds it. Pause, resume and other codes without an agent go through the shared ACD
from any worker and stay where they arrived.

The worker that takes such a call may not hold the phone's registration (each worker's registrar knows
the phones the kernel gave it): it believes the address the ACD has for the agent
(`ivr.engine.nodeparts.shared_phone_user`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ivr.acd.config import AcdConfig
from ivr.acd.distributor import Distributor
from ivr.errors import IvrError
from ivr.sip.message import Request
from ivr.sip.parser import parse_message
from ivr.workers.routing import header_value as _header

_NEW_CALL = (b"INVITE ", b"CANCEL ")
"""A CANCEL (no To-tag) must follow its INVITE."""
_FROM_USER = re.compile(rb"sips?:([^@;>\s]+)@")


def holder_index(node_id: str, holder: str) -> int | None:
    """The worker of node `node_id` whose ACD node id is `holder` (None: another node's)."""
    if holder == node_id:
        return 0
    prefix = f"{node_id}-w"
    if not holder.startswith(prefix):
        return None
    index = holder[len(prefix):].split(".", 1)[0]
    return int(index) if index.isdigit() and len(index) <= 3 else None


class DeskRoute:
    """For a new INVITE on the shared port: the worker holding the caller an agent's phone calls about."""

    def __init__(self, config: AcdConfig, core: Callable[[], Distributor], node_id: str) -> None:
        """`core`: this worker's current copy of the ACD state (`Acd.core`; a resync replaces it)."""
        self._agents = frozenset(config.agents)
        self._agent_of = {a.sip.username: a.agent_id for a in config.agents.values()}
        self._core = core
        self._node_id = node_id

    def __call__(self, data: bytes, source: tuple[str, int]) -> int | None:
        if not data.startswith(_NEW_CALL):
            return None
        sender = _header(data, (b"from", b"f"))  # a trunk's caller costs no full parse
        found = _FROM_USER.search(sender) if sender is not None else None
        if found is None or found.group(1).decode("utf-8", "replace") not in self._agent_of:
            return None
        try:
            request = parse_message(data)
        except IvrError:
            return None
        if not isinstance(request, Request) or request.to.tag:
            return None
        agent = self._agent_of.get(request.from_.uri.user or "")
        if agent is None:
            return None
        about = self._about(agent, request.uri.user or "")
        holder = self._holder(about) if about is not None else None
        return holder_index(self._node_id, holder) if holder is not None else None

    def _about(self, agent: str, dialed: str) -> str | None:
        """The agent whose call this one is about: the one a feature code names, else the caller's own."""
        if not dialed.startswith("*"):
            return agent
        named = dialed[3:]
        if not named:
            return None
        return named if named in self._agents else self._agent_of.get(named)

    def _holder(self, agent: str) -> str | None:
        """The ACD node holding `agent`'s current call (None: not on a call)."""
        core = self._core()
        if agent not in core.agents:
            return None
        connected = core.state.connected
        for call_id in core.agent_view(agent).calls:
            conn = connected.get(call_id)
            if conn is not None:
                return conn.node
        return None


__all__ = ["DeskRoute", "holder_index"]
