"""Automatic call distributor: agents, queues, strategies, overflow, callbacks, site dispatch.

Independent of SIP: it deals in agent ids, contacts (strings) and call ids. The call layer uses
`Acd` (enqueue -> `QueueTicket`, then ring_answered / ring_failed / call_ended / abandon /
request_callback); the SIP registrar calls `controls.login`; the web API calls `dispatch`.

Layers, pure first: `Distributor` (distributor.py) applies commands with the time to one `AcdState`
(state.py) through its parts: matching.py, overflow.py, staffing.py, leases.py, dispatch.py;
snapshot.py turns the state into JSON and back. `Replica` (replica.py) keeps a node's distributor in
step with the backend's log (memory.py, redis_backend.py); `TicketDesk` (tickets.py) is the
caller's side; `Acd` (service.py) is the facade. Dispatch types come from `ivr.dispatching`.
"""

from __future__ import annotations

from ivr.acd.agent import AgentState, AgentStatus
from ivr.acd.backend import AcdBackend, LogReset, LogTrimmed, Snapshot, StoreUnreachable
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
    "LogReset",
    "LogTrimmed",
    "Snapshot",
    "StoreUnreachable",
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
