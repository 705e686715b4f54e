"""The ops web layer: dashboard, JSON API (OpenAPI-documented), Server-Sent Events, /healthz, /metrics.

The engine builds a `LiveState` and an `EngineMetrics`, updates them as calls run, and serves
`create_app(store=..., live=..., ...)`; every data source is a small Protocol from `ivr.web.sources`.
"""

from __future__ import annotations

from ivr.web.app import create_app
from ivr.web.errors import UnknownDispatch, WebError
from ivr.web.live import ChangeKind, LiveChange, LiveState
from ivr.web.metrics import Counter, EngineMetrics, Gauge, Histogram, Metrics
from ivr.web.sources import (
    AcdView,
    AgentState,
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
    "AcdView",
    "AgentState",
    "AgentView",
    "CallStoreView",
    "ChangeKind",
    "Counter",
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
    "WebError",
    "create_app",
]
