"""The flow as a graph: its edges (for reachability and loop checks) and a graphviz drawing."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.flow.model import AskNode, Case, FlowSpec, ListeningNode, MenuNode, Node, Ref, SurveyNode
from ivr.flow.schema import field_type, yaml_fields


@dataclass(slots=True, frozen=True)
class Edge:
    source: str
    target: str
    label: str
    """Key, intent, outcome or condition that takes this edge ("" for plain `next`)."""


_PLAIN = frozenset({"next", "goto"})


def _walk(value: Any, tp: Any, label: str) -> Iterator[tuple[str, str]]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, ref = typing.get_args(tp)[:2]
        if ref is Ref.NODE and isinstance(value, str):
            yield ("" if label in _PLAIN else label), value
            return
        yield from _walk(value, base, label)
    elif value is None:
        return
    elif origin in (types.UnionType, typing.Union):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        yield from _walk(value, rest[0], label)
    elif origin is tuple and isinstance(value, tuple):
        for item in value:
            yield from _walk(item, typing.get_args(tp)[0], label)
    elif origin in (Mapping, dict) and isinstance(value, Mapping):
        vtype = typing.get_args(tp)[1]
        for key, item in value.items():
            yield from _walk(item, vtype, str(key))
    elif isinstance(value, Case):
        yield f"if {value.when}", value.goto
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name, f in yaml_fields(type(value)).items():
            yield from _walk(getattr(value, f.name), field_type(type(value), f.name), name)


def node_edges(spec: FlowSpec, node: Node) -> list[Edge]:
    """Every node this one can go to, with what takes it there (including the flow's human key)."""
    out = [Edge(node.id, target, label) for label, target in _walk(node, type(node), "")]
    if isinstance(node, ListeningNode) and spec.human:
        keys: Mapping[str, str] = node.keys if isinstance(node, MenuNode | AskNode) else {}
        human_key = node.human_key if isinstance(node, MenuNode | AskNode) else None
        if human_key is not None and human_key not in keys:
            out.append(Edge(node.id, spec.human, f"{human_key}: human"))
        if node.on_fail is None and not isinstance(node, SurveyNode):
            out.append(Edge(node.id, spec.human, "on_fail"))
    return out


def edges(spec: FlowSpec) -> list[Edge]:
    return [e for node in spec.nodes.values() for e in node_edges(spec, node)]


def adjacency(spec: FlowSpec) -> dict[str, list[str]]:
    """Node id → the ids of the nodes it can go to."""
    out: dict[str, list[str]] = {}
    for e in edges(spec):
        out.setdefault(e.source, []).append(e.target)
    return out


def reachable(spec: FlowSpec, start: str) -> set[str]:
    return reach(adjacency(spec), start)


def reach(adjacency: Mapping[str, list[str]], start: str) -> set[str]:
    """`start` and every node a path leads to from it."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in adjacency.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def render(spec: FlowSpec, out: str | Path, *, start: str | None = None) -> Path:
    """Draw the flow with graphviz (`dot`): one box per node, keys/intents/outcomes on the edges."""
    import graphviz

    path = Path(out)
    fmt = path.suffix.lstrip(".") or "svg"
    dot = graphviz.Digraph(spec.id, format=fmt)
    dot.attr(rankdir="LR", label=f"{spec.id} v{spec.version}", fontname="Noto Sans CJK SC,sans-serif")
    dot.attr("node", shape="box", style="rounded", fontname="sans-serif")
    first = start or spec.start or next(iter(spec.nodes), "")
    for node in spec.nodes.values():
        shape = "doubleoctagon" if node.id == first else "box"
        dot.node(node.id, f"{node.id}\n({node.kind.value})", shape=shape)
    for e in edges(spec):
        if e.target in spec.nodes:
            dot.edge(e.source, e.target, label=e.label)
    data = dot.pipe(format=fmt)
    path.write_bytes(data)
    return path
