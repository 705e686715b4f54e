"""The flow language: YAML call flows loaded once into typed frozen dataclasses, validated with
line numbers, and run by an async interpreter over the `Call` protocol."""

from __future__ import annotations

from ivr.flow.errors import (
    EvaluationError,
    ExpressionError,
    FlowError,
    FlowLoadError,
    FlowRuntimeError,
    Problem,
    Severity,
)
from ivr.flow.events import StepKind
from ivr.flow.expr import Expression
from ivr.flow.interpreter import Interpreter
from ivr.flow.loader import LoadResult, check_file, load_flow, load_text
from ivr.flow.model import DEFAULT_FALLBACKS, Flow, FlowSpec, Node, NodeType
from ivr.flow.registry import FlowRegistry, FlowStatus, ReloadResult, flow_key
from ivr.flow.runtime import HttpClient, HttpReply

__all__ = [
    "DEFAULT_FALLBACKS",
    "EvaluationError",
    "ExpressionError",
    "Flow",
    "FlowError",
    "FlowLoadError",
    "FlowRegistry",
    "FlowRuntimeError",
    "FlowSpec",
    "FlowStatus",
    "HttpClient",
    "HttpReply",
    "Interpreter",
    "LoadResult",
    "Node",
    "NodeType",
    "Problem",
    "ReloadResult",
    "Severity",
    "StepKind",
    "Expression",
    "check_file",
    "flow_key",
    "load_flow",
    "load_text",
]
