"""The flow file format published as JSON Schema (draft 2020-12), generated from the model classes.

`ivr schema` prints it; editors can use it for completion. The loader's own checks go further
(references, reachability, loops, dialect coverage), so a file can match the schema and still be refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

from ivr.flow.expr import Expression
from ivr.flow.model import NODE_TYPES, FlowSpec, Node, Ref
from ivr.flow.schema import field_type, required, yaml_fields

SCHEMA_ID = "https://ivr.example/schemas/flow.json"

_PATTERNS: Mapping[Ref, str] = {
    Ref.KEY: r"^[0-9*#]$",
    Ref.VARIABLE: r"^[A-Za-z_][A-Za-z0-9_]*$",
    Ref.DIALECT: r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$",
    Ref.NUMBER: r"^\+?[0-9]{3,20}$",
    Ref.SIP_URI: r"^(sips?|tel):\S+$",
}


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, ref = typing.get_args(tp)[:2]
        out = _type_schema(base, defs)
        if isinstance(ref, Ref):
            if ref in _PATTERNS:
                out["pattern"] = _PATTERNS[ref]
            out["description"] = f"a {ref.value.replace('_', ' ')}"
        return out
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if set(rest) <= {str, int, float, bool}:
            return {"type": ["string", "number", "boolean", "null"]}
        return {"anyOf": [_type_schema(rest[0], defs), {"type": "null"}]}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0], defs)}
    if origin in (Mapping, dict):
        ktype, vtype = typing.get_args(tp)
        out = {"type": "object", "additionalProperties": _type_schema(vtype, defs)}
        key = _type_schema(ktype, defs)
        if "pattern" in key:
            out["propertyNames"] = {"pattern": key["pattern"]}
        return out
    if tp is Expression:
        return {"type": "string", "description": "a safe expression over call variables"}
    if tp is Node:
        return {"$ref": "#/$defs/Node"}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}
            defs[name] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is dt.time:
        return {"type": "string", "pattern": r"^([01]?[0-9]|2[0-4]):[0-5][0-9]$"}
    if tp is dt.date:
        return {"type": "string", "format": "date"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return {"type": simple[tp]}


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    needed: list[str] = []
    for name, f in yaml_fields(cls).items():
        props[name] = _type_schema(field_type(cls, f.name), defs)
        if required(f):
            needed.append(name)
    if issubclass(cls, Node):
        props["type"] = {"const": cls.kind.value}
        needed.insert(0, "type")
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if needed:
        out["required"] = needed
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        out["description"] = " ".join(cls.__doc__.split())
    return out


def flow_json_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    names = []
    for cls in NODE_TYPES.values():
        defs[cls.__name__] = _object_schema(cls, defs)
        names.append(cls.__name__)
    defs["Node"] = {"oneOf": [{"$ref": f"#/$defs/{n}"} for n in names]}
    return document_schema(FlowSpec, schema_id=SCHEMA_ID, title="IVR call flow", defs=defs)


def document_schema(
    cls: type, *, schema_id: str, title: str, defs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A whole file format as JSON Schema (draft 2020-12): the dataclass `cls` at the root, the types it
    uses under `$defs` (`defs` may already hold some). Campaign files are published the same way."""
    defs = {} if defs is None else defs
    root = _object_schema(cls, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        **root,
        "$defs": defs,
    }


def yaml_to_json(text: str) -> Any:
    """A flow file as plain JSON data, keys as written (`yes:` stays "yes", `1:` stays "1")."""

    def convert(node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return {str(k.value): convert(v) for k, v in node.value}
        if isinstance(node, yaml.SequenceNode):
            return [convert(v) for v in node.value]
        tag = node.tag.rsplit(":", 1)[-1]
        value = str(node.value)
        if tag == "int":
            return int(value)
        if tag == "float":
            return float(value)
        if tag == "bool":
            return value.lower() in ("true", "yes", "on")
        if tag == "null":
            return None
        return value

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return None if root is None else convert(root)
