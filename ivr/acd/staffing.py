"""Agents' own commands: log in (REGISTER), log out, pause, resume, end wrap-up, and a bridged call ending.

Every move goes through the agent's state machine (`ivr.acd.agent`); an illegal one is answered
with CommandRejected naming the agent, its state and the event. Rings an agent can no longer take
(logged out, paused) are withdrawn first, without counting a miss.
"""

from __future__ import annotations

from ivr.acd.agent import Agent, AgentEvent
from ivr.acd.commands import AgentCallEnded, AgentLogin, AgentLogout, AgentPause, AgentResume, AgentWrapUpDone
from ivr.acd.errors import IllegalTransition
from ivr.acd.events import AcdEvent, RejectReason, WithdrawReason
from ivr.acd.state import AcdState, Rejected


class Staffing:
    """Applies the agents' status commands to the shared state."""

    __slots__ = ("state",)

    def __init__(self, state: AcdState) -> None:
        self.state = state

    def _status_change(self, agent_id: str, event: AgentEvent) -> Agent:
        agent = self.state.agent(agent_id)
        if not agent.allows(event):
            raise Rejected(RejectReason.ILLEGAL, str(IllegalTransition(agent_id, agent.status.value, event.value)))
        return agent

    def login(self, cmd: AgentLogin, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.LOGIN)
        self.state.changed(agent, agent.login(cmd.contact, self.state.now), out)

    def logout(self, cmd: AgentLogout, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.LOGOUT)
        self.state.withdraw_agent_rings(agent, WithdrawReason.AGENT_LOGGED_OUT, out)
        self.state.changed(agent, agent.logout(self.state.now), out)

    def pause(self, cmd: AgentPause, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.PAUSE)
        self.state.withdraw_agent_rings(agent, WithdrawReason.AGENT_PAUSED, out)
        self.state.changed(agent, agent.pause(cmd.reason, self.state.now), out)

    def resume(self, cmd: AgentResume, node: str, out: list[AcdEvent]) -> None:
        agent = self._status_change(cmd.agent_id, AgentEvent.RESUME)
        self.state.changed(agent, agent.resume(self.state.now), out)

    def wrap_up_done(self, cmd: AgentWrapUpDone, node: str, out: list[AcdEvent]) -> None:
        """Wrap-up ends now rather than at its deadline (whose heap entry then goes stale)."""
        agent = self.state.agent(cmd.agent_id)
        if not agent.allows(AgentEvent.WRAP_UP_END):
            raise Rejected(RejectReason.ILLEGAL,
                           str(IllegalTransition(agent.agent_id, agent.state.value, AgentEvent.WRAP_UP_END.value)))
        self.state.changed(agent, agent.end_wrap_up(self.state.now), out)

    def call_ended(self, cmd: AgentCallEnded, node: str, out: list[AcdEvent]) -> None:
        s = self.state
        agent = s.agent(cmd.agent_id)
        call_id = cmd.call_id
        if call_id is None:
            calls = agent.connected_calls()
            if len(calls) != 1:
                raise Rejected(
                    RejectReason.UNKNOWN_CALL,
                    f"agent {agent.agent_id!r} has {len(calls)} calls: name the one that ended",
                )
            call_id = calls[0]
        conn = s.connected.get(call_id)
        if conn is None or conn.agent_id != agent.agent_id:
            raise Rejected(RejectReason.UNKNOWN_CALL, f"agent {agent.agent_id!r} is not on call {call_id!r}")
        s.end_call(conn, out)
