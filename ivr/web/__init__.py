"""The ops web layer: dashboard, JSON API (OpenAPI-documented), Server-Sent Events, /healthz, /readyz, /metrics.

The engine builds a `LiveState` and an `EngineMetrics`, updates them as calls run, and serves
`create_app(store=..., live=..., access=server_access(config), ...)`; every data source is a small
Protocol from `ivr.web.sources`. Every data route needs a bearer token (`ivr.web.access`, `ivr.web.guard`);
local clients find theirs with `client_token()`.
"""

from __future__ import annotations

from ivr.web.access import (
    TOKEN_ENV,
    TOKEN_FILE,
    ApiAccess,
    ApiToken,
    Role,
    bearer_headers,
    client_token,
    new_token_spec,
    server_access,
)
from ivr.web.app import create_app
from ivr.web.counters import CounterSources, watch_counters
from ivr.web.errors import UnknownDispatch, WebError
from ivr.web.live import ChangeKind, LiveChange, LiveState
from ivr.web.metrics import Counter, EngineMetrics, Gauge, Histogram, Metrics
from ivr.web.sources import (
    AcdView,
    AgentPresence,
    AgentView,
    CallStoreView,
    CurrentCall,
    DialectSetter,
    DispatchChangeKind,
    DispatchChangeView,
    Dispatcher,
    DispatchRequest,
    DispatchView,
    FlowLoadStatus,
    FlowStatus,
    FlowView,
    LiveSnapshot,
    LiveView,
    QueueView,
)

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE",
    "AcdView",
    "ApiAccess",
    "ApiToken",
    "AgentPresence",
    "AgentView",
    "CallStoreView",
    "ChangeKind",
    "Counter",
    "CounterSources",
    "CurrentCall",
    "DialectSetter",
    "DispatchChangeKind",
    "DispatchChangeView",
    "DispatchRequest",
    "DispatchView",
    "Dispatcher",
    "EngineMetrics",
    "FlowLoadStatus",
    "FlowStatus",
    "FlowView",
    "Gauge",
    "Histogram",
    "LiveChange",
    "LiveSnapshot",
    "LiveState",
    "LiveView",
    "Metrics",
    "QueueView",
    "UnknownDispatch",
    "Role",
    "WebError",
    "bearer_headers",
    "client_token",
    "create_app",
    "new_token_spec",
    "server_access",
    "watch_counters",
]
