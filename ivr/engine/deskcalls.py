"""Calls from agents' own phones: feature codes, and calls to another agent (consultations).

The inbound path asks `DeskCalls.take` first, before any flow: an INVITE from a phone registered as an
agents.yaml user (`AgentRegistrar.phone_user`: its From user, from its registered address) that dials a
feature code (`*21`...) is served by `FeatureCodes`; one that dials another agent (id or SIP user) is a
consultation (`AgentTransfers.consult`: the target rings with the context of the caller the agent is
talking to, the first half of an attended transfer). Anything else (an agent dialling the hotline
number to try it) goes on to the flows. Admission lets these numbers in (`accepts`); a stranger dialling
them still finds no flow (404).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ivr.acd import Acd
from ivr.clock import Clock
from ivr.engine.dialer import SipLegs
from ivr.engine.featurecodes import MAX_ARGUMENT_CHARS, FeatureCodes
from ivr.engine.transfers import AgentTransfers, TargetKind
from ivr.sip.message import Request
from ivr.sip.refer import ReferTarget
from ivr.sipua.calls import IncomingCall

log = structlog.get_logger(__name__)

PhoneUser = Callable[[Request, tuple[str, int], float], "str | None"]
"""The registered agents.yaml user that sent an INVITE from its registered address, else None."""


class DeskCalls:
    """Routes calls from registered agents' phones; see the module docstring."""

    def __init__(self, acd: Acd, phone_user: PhoneUser, codes: FeatureCodes, transfers: AgentTransfers,
                 legs: SipLegs, clock: Clock) -> None:
        self._acd = acd
        self._phone_user = phone_user
        self.codes = codes
        self._transfers = transfers
        self._legs = legs
        self._clock = clock

    def accepts(self, dialed: str) -> bool:
        """Admission: a number only agents' phones call (a feature code, an agent)."""
        if dialed.startswith("*"):
            return len(dialed) <= 3 + MAX_ARGUMENT_CHARS
        return dialed in self._acd.config.agents or self._acd.agent_for_sip_user(dialed) is not None

    async def take(self, incoming: IncomingCall) -> bool:
        """Serve `incoming` when it is an agent's phone calling a code or an agent; False: not ours."""
        user = self._phone_user(incoming.request, incoming.source, self._clock.now())
        if user is None:
            return False
        agent_id = self._acd.agent_for_sip_user(user)
        dialed = incoming.dialed
        if dialed.startswith("*"):
            supervisor = agent_id is not None and self._acd.config.agents[agent_id].supervisor
            leg = await self._legs.answer(incoming)
            if leg is not None:
                await self.codes.run(dialed, user, agent_id, supervisor, leg)
            return True
        target = self._transfers.resolve(ReferTarget(f"sip:{dialed}@local"))
        if agent_id is None or target is None or target.kind is not TargetKind.AGENT or target.name == agent_id:
            return False
        leg = await self._legs.answer(incoming)
        if leg is None or incoming.leg is None:
            return True
        log.info("consultation_started", agent=agent_id, target=target.name)
        await self._transfers.consult(agent_id, leg, incoming.leg.dialog.key, target)
        return True


__all__ = ["DeskCalls"]
