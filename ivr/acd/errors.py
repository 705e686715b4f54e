"""The ACD's error tree: `AcdError` and what derives from it.

Errors that the call layer can provoke by a lost race (an offer answered after it was withdrawn, a
hang-up for a caller already gone) are not raised: the distributor reports them as
`CommandRejected` events and the facade turns them into a `False` or `None` result.
"""

from __future__ import annotations

from ivr.acd.events import AcdEvent, CommandRejected, RejectReason
from ivr.errors import ConfigError, IvrError


class AcdError(IvrError):
    """Base class of every deliberate ACD error."""


class UnknownQueue(AcdError):
    """A queue id that no queue in the configuration has."""


class UnknownAgent(AcdError):
    """An agent id that no agent in the configuration has."""


class UnknownSite(AcdError):
    """A site id that no site in the configuration has."""


class IllegalTransition(AcdError):
    """An agent was asked to make a move its state machine does not allow."""

    def __init__(self, agent_id: str, state: str, event: str) -> None:
        super().__init__(f"agent {agent_id!r}: event {event!r} is illegal in state {state!r}")
        self.agent_id = agent_id
        self.state = state
        self.event = event


class AcdConfigError(AcdError, ConfigError):
    """agents.yaml or queues.yaml is wrong; the message starts with `file:line:column:`."""


class BackendError(AcdError):
    """The shared state store failed or holds something this node cannot read."""


_RAISE: dict[RejectReason, type[AcdError]] = {
    RejectReason.UNKNOWN_QUEUE: UnknownQueue,
    RejectReason.UNKNOWN_AGENT: UnknownAgent,
    RejectReason.UNKNOWN_SITE: UnknownSite,
    RejectReason.ILLEGAL: AcdError,
    RejectReason.INVALID: AcdError,
    RejectReason.DUPLICATE_CALL: AcdError,
}


def raise_rejected(events: list[AcdEvent], *, lost_races: bool = True) -> None:
    """Raise the error a command's `CommandRejected` answer means; a lost race raises only when
    `lost_races` is False (see above)."""
    for event in events:
        if isinstance(event, CommandRejected):
            error = _RAISE.get(event.reason)
            if error is not None:
                raise error(event.message)
            if not lost_races:
                raise AcdError(event.message)
