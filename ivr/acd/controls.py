"""Agent controls: the commands that change an agent's presence and availability.

Login and logout (the registrar on REGISTER, the feature codes, the web desk), pause and resume, and
ending wrap-up early. Each is one command to the node's `Replica`, answered when this node applied it;
a rejection raises (`ivr.acd.errors.raise_rejected`). `Acd.controls` is the one instance of a node.
"""

from __future__ import annotations

from ivr.acd.commands import AgentLogin, AgentLogout, AgentPause, AgentResume, AgentWrapUpDone, Command
from ivr.acd.errors import raise_rejected
from ivr.acd.replica import Replica


class AgentControls:
    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    async def login(self, agent_id: str, contact: str) -> None:
        """Log in (or refresh the contact of) an agent; the registrar calls it on REGISTER."""
        await self._send(AgentLogin(agent_id, contact))

    async def logout(self, agent_id: str) -> None:
        await self._send(AgentLogout(agent_id))

    async def pause(self, agent_id: str, reason: str = "break") -> None:
        await self._send(AgentPause(agent_id, reason))

    async def resume(self, agent_id: str) -> None:
        """Back to available (also after an automatic pause for missed offers: the miss count restarts)."""
        await self._send(AgentResume(agent_id))

    async def wrap_up_done(self, agent_id: str) -> None:
        """End the agent's wrap-up now; raises AcdError when they are not in wrap-up."""
        await self._send(AgentWrapUpDone(agent_id))

    async def _send(self, command: Command) -> None:
        raise_rejected(await self._replica.send(command))
