"""What the distributor reports: offers to ring agents, callers leaving, agents changing, dispatches.

Every event is a past-tense fact produced by `Distributor.apply`; the async facade routes them to
tickets (the caller's side), to callback consumers and to listeners (dashboard, journey records).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ivr.call import QueueRequest, QueueResult
from ivr.dispatching import DispatchChange, DispatchChanged

__all__ = ["DispatchChange", "DispatchChanged"]  # re-exported: the ACD reports dispatch changes as these


class OfferKind(enum.Enum):
    CALL = "call"
    """Ring the agent and bridge the waiting caller on answer."""
    CALLBACK = "callback"
    """Call the agent first; once answered, dial `callback_number` and bridge."""


class RingFailure(enum.Enum):
    """Why ringing an agent did not end in an answer (all count as a miss)."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


class WithdrawReason(enum.Enum):
    """Why the ACD took back an offer the engine may still be ringing."""

    ANSWERED_ELSEWHERE = "answered_elsewhere"
    CALLER_LEFT = "caller_left"
    RING_TIMEOUT = "ring_timeout"
    AGENT_LOGGED_OUT = "agent_logged_out"
    AGENT_PAUSED = "agent_paused"
    NODE_LOST = "node_lost"


class RejectReason(enum.Enum):
    """Why a command changed nothing. The first five are API misuse; the rest are lost races."""

    UNKNOWN_QUEUE = "unknown_queue"
    UNKNOWN_AGENT = "unknown_agent"
    UNKNOWN_SITE = "unknown_site"
    ILLEGAL = "illegal"
    INVALID = "invalid"
    DUPLICATE_CALL = "duplicate_call"
    UNKNOWN_CALL = "unknown_call"
    STALE_OFFER = "stale_offer"


@dataclass(slots=True, frozen=True)
class Offer:
    """Ring `agent_id` at `contact` for `call_id`; the engine answers with ring_answered/ring_failed."""

    offer_id: str
    kind: OfferKind
    call_id: str
    agent_id: str
    contact: str
    """Where the agent registered (a SIP URI as a string; the ACD never parses it)."""
    queue: str
    node: str
    """The engine node that owns the caller's call (or the callback) and so rings the agent."""
    ring_timeout_s: float
    deadline: float
    """ACD time at which an unanswered offer is withdrawn and counted as a miss."""
    request: QueueRequest
    """The flow's request, unchanged (its `queue` is where the caller first asked to go)."""
    callback_number: str | None = None
    wait_s: float = 0.0
    """Seconds the caller had waited when the offer was made."""

    @property
    def priority(self) -> int:
        return self.request.priority

    @property
    def dialect(self) -> str:
        return self.request.dialect

    @property
    def context(self) -> Mapping[str, str]:
        """What the agent sees (intent, transcript, breakpoint...): put in X-IVR headers by the engine."""
        return self.request.context


@dataclass(slots=True, frozen=True)
class CallerEnqueued:
    call_id: str
    queue: str
    node: str
    priority: int
    position: int
    """1-based place in the queue on arrival."""


@dataclass(slots=True, frozen=True)
class OfferMade:
    offer: Offer


@dataclass(slots=True, frozen=True)
class OfferWithdrawn:
    offer: Offer
    reason: WithdrawReason


@dataclass(slots=True, frozen=True)
class OfferFailed:
    """The engine reported (or the ring timeout found) that the agent did not answer."""

    offer: Offer
    reason: RingFailure
    misses: int
    """The agent's consecutive misses after this one."""


@dataclass(slots=True, frozen=True)
class CallerConnected:
    """An agent answered: the caller is bridged (or, for a callback, is being dialled)."""

    offer: Offer
    wait_s: float


@dataclass(slots=True, frozen=True)
class CallerMoved:
    """The caller overflowed to another queue, keeping priority and arrival order."""

    call_id: str
    from_queue: str
    to_queue: str


@dataclass(slots=True, frozen=True)
class SitesWidened:
    """The caller overflowed to another site: that site's agents may now serve them."""

    call_id: str
    queue: str
    site: str


@dataclass(slots=True, frozen=True)
class CallbackSuggested:
    """The caller waited past the queue's max wait; the call layer may offer a callback (place kept)."""

    call_id: str
    queue: str


@dataclass(slots=True, frozen=True)
class CallbackRegistered:
    call_id: str
    queue: str
    number: str
    position: int


@dataclass(slots=True, frozen=True)
class CallerLeft:
    """The caller's wait is over for good; `result` is what `Call.enqueue` returns to the flow."""

    call_id: str
    node: str
    result: QueueResult


@dataclass(slots=True, frozen=True)
class AgentChanged:
    """One transition of an agent's status or state, with the times reporting needs."""

    agent_id: str
    event: str
    status: str
    state: str
    pause_reason: str | None
    at: float
    wall: datetime
    status_since: float
    state_since: float


@dataclass(slots=True, frozen=True)
class NodeLost:
    """A node's lease expired: its waiting callers are gone, its callbacks moved to `heir`."""

    node: str
    call_ids: tuple[str, ...]
    heir: str | None


@dataclass(slots=True, frozen=True)
class CommandRejected:
    reason: RejectReason
    message: str


AcdEvent = (
    CallerEnqueued
    | OfferMade
    | OfferWithdrawn
    | OfferFailed
    | CallerConnected
    | CallerMoved
    | SitesWidened
    | CallbackSuggested
    | CallbackRegistered
    | CallerLeft
    | AgentChanged
    | DispatchChanged
    | NodeLost
    | CommandRejected
)
