"""Automatic call distributor: agents, queues, strategies, overflow, callbacks, site dispatch.

Independent of SIP: it deals in agent ids, contacts (strings) and call ids. The call layer uses
`Acd` (enqueue -> `QueueTicket`, then ring_answered / ring_failed / call_ended / abandon /
request_callback); the SIP registrar calls `agent_login`; the web API calls `dispatch`.
`Distributor` is the pure core underneath, fed commands with the time.
"""

from __future__ import annotations

from ivr.acd.agent import AgentState, AgentStatus
from ivr.acd.backend import AcdBackend
from ivr.acd.config import AcdConfig, AgentConfig, QueueConfig, SiteConfig, load_config, parse_config
from ivr.acd.distributor import AgentView, Distributor, QueueStats
from ivr.acd.errors import (
    AcdConfigError,
    AcdError,
    BackendError,
    IllegalTransition,
    UnknownAgent,
    UnknownQueue,
    UnknownSite,
)
from ivr.acd.events import (
    AcdEvent,
    DispatchChanged,
    Offer,
    OfferKind,
    RingFailure,
    WithdrawReason,
)
from ivr.acd.memory import MemoryBackend, MemoryLog
from ivr.acd.redis_backend import RedisBackend
from ivr.acd.service import Acd, QueueTicket, TicketUpdate, run_clock
from ivr.acd.strategy import Strategy

__all__ = [
    "Acd",
    "AcdBackend",
    "AcdConfig",
    "AcdConfigError",
    "AcdError",
    "AcdEvent",
    "AgentConfig",
    "AgentState",
    "AgentStatus",
    "AgentView",
    "BackendError",
    "DispatchChanged",
    "Distributor",
    "IllegalTransition",
    "MemoryBackend",
    "MemoryLog",
    "Offer",
    "OfferKind",
    "QueueConfig",
    "QueueStats",
    "QueueTicket",
    "RedisBackend",
    "RingFailure",
    "SiteConfig",
    "Strategy",
    "TicketUpdate",
    "UnknownAgent",
    "UnknownQueue",
    "UnknownSite",
    "WithdrawReason",
    "load_config",
    "parse_config",
    "run_clock",
]
