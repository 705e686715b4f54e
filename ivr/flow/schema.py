"""Composed YAML → typed model, driven by the model's annotations; every problem gets its line.

`Converter.convert(node, type, path)` returns the converted value or `INVALID` after recording a
`Problem`. It keeps the mark of every value by path and every reference (node, prompt, queue,
intent) it meets, so the validator can check them against the whole flow afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import enum
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import yaml

from ivr.flow.errors import ExpressionError, Problem, Severity
from ivr.flow.expr import Expression
from ivr.flow.model import NODE_TYPES, Node, NodeType, Ref

Path = tuple[str, ...]


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
MAX_DEPTH = 30
MAX_VALUES = 200_000

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIALECT = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_TIME = re.compile(r"^([01]?[0-9]|2[0-4]):([0-5][0-9])$")
KEYS = frozenset("0123456789*#")
_NULL_TAG = "tag:yaml.org,2002:null"
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})


@dataclass(slots=True, frozen=True)
class Mark:
    line: int
    col: int

    @classmethod
    def of(cls, node: yaml.Node) -> Mark:
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(slots=True, frozen=True)
class RefUse:
    """A name used somewhere that must be declared elsewhere in the flow."""

    ref: Ref
    value: str
    path: Path
    mark: Mark


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    hint = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def describe(path: Path) -> str:
    """`("nodes", "menu", "keys", "1")` → `node 'menu' field 'keys.1'`."""
    sections = {"nodes": "node", "prompts": "prompt", "intents": "intent", "variables": "variable"}
    if len(path) >= 2 and path[0] in sections:
        head = f"{sections[path[0]]} '{path[1]}'"
        rest = path[2:]
    else:
        head, rest = "flow", path
    return f"{head} field '{'.'.join(rest)}'" if rest else head


def context(path: Path) -> str:
    """The thing a path belongs to: `node 'menu'`, `prompt 'greeting'`, `flow`."""
    return describe(path[:2]) if path and path[0] in ("nodes", "prompts", "intents") else "flow"


def _got(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = str(node.value)
    return f"'{value[:40]}'" if value else "nothing"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def yaml_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """YAML spelling → dataclass field, for fields written in YAML."""
    out: dict[str, dataclasses.Field[Any]] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("from_key"):
            continue
        out[f.metadata.get("yaml", f.name)] = f
    return out


def field_type(cls: type, name: str) -> Any:
    return _hints(cls)[name]


def required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class Converter:
    """One pass over a composed YAML document; collects problems instead of raising."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.refs: list[RefUse] = []
        self.node_types: dict[str, NodeType] = {}
        self.failed: set[Path] = set()
        """Paths (and their ancestors) where conversion reported a problem: later checks skip them."""
        self._budget = MAX_VALUES
        self._depth = 0

    def problem(self, mark: Mark, message: str, severity: Severity = Severity.ERROR) -> None:
        self.problems.append(Problem(self.path, mark.line, mark.col, message, severity))

    def _fail(self, node: yaml.Node, path: Path, expected: str) -> Any:
        self.problem(Mark.of(node), f"{describe(path)} must be {expected}, got {_got(node)}")
        return INVALID

    # -- entry ------------------------------------------------------------------------------

    def convert(self, node: yaml.Node, tp: Any, path: Path, key: str | None = None) -> Any:
        self._budget -= 1
        if self._budget < 0:
            if self._budget == -1:
                self.problem(
                    Mark.of(node), f"flow is too large (more than {MAX_VALUES} values after aliases)"
                )
            return INVALID
        if self._depth > MAX_DEPTH:
            self.problem(Mark.of(node), f"{describe(path)} is nested deeper than {MAX_DEPTH} levels")
            return INVALID
        self.marks[path] = Mark.of(node)
        self._depth += 1
        before = len(self.problems)
        try:
            return self._convert(node, tp, path, key)
        finally:
            self._depth -= 1
            if len(self.problems) > before:
                self.failed.add(path)

    def _convert(self, node: yaml.Node, tp: Any, path: Path, key: str | None) -> Any:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            base, ref = typing.get_args(tp)[:2]
            value = self._convert(node, base, path, key)
            if value is INVALID or not isinstance(ref, Ref):
                return value
            return self._ref(node, ref, value, path)
        if origin in (types.UnionType, typing.Union):
            args = typing.get_args(tp)
            if type(None) in args and self._is_null(node):
                return None
            rest = [a for a in args if a is not type(None)]
            if set(rest) <= {str, int, float, bool}:
                return self._scalar(node, path)
            return self._convert(node, rest[0], path, key)
        if origin is tuple:
            return self._tuple(node, typing.get_args(tp)[0], path)
        if origin in (Mapping, dict, typing.Mapping):
            ktype, vtype = typing.get_args(tp)
            return self._mapping(node, ktype, vtype, path)
        if tp is Expression:
            return self._expression(node, path)
        if tp is Node:
            return self._node(node, path, key or "")
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._dataclass(node, tp, path, key)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(node, tp, path)
        return self._plain(node, tp, path)

    # -- leaves -------------------------------------------------------------------------------

    @staticmethod
    def _is_null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self._fail(node, path, "a single value")
        tag = node.tag.rsplit(":", 1)[-1]
        value = str(node.value)
        try:
            if tag == "bool":
                return value.lower() in _TRUE
            if tag == "int":
                return (
                    int(value.replace("_", ""), 0)
                    if not value.startswith("0") or value == "0"
                    else int(value)
                )
            if tag == "float":
                return float(value)
        except ValueError:
            return value
        return value

    def _plain(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            names = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}
            return self._fail(node, path, names.get(tp, "a single value"))
        value = str(node.value)
        if tp is str:
            if self._is_null(node):
                return self._fail(node, path, "text")
            return value
        if tp is bool:
            low = value.lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            return self._fail(node, path, "true or false")
        if tp is int:
            try:
                return int(value)
            except ValueError:
                return self._fail(node, path, "a whole number")
        if tp is float:
            try:
                number = float(value)
            except ValueError:
                return self._fail(node, path, "a number")
            if number != number or number in (float("inf"), float("-inf")):
                return self._fail(node, path, "a finite number")
            return number
        if tp is dt.time:
            match = _TIME.match(value)
            if not match or (match.group(1) == "24" and match.group(2) != "00"):
                return self._fail(node, path, "a time of day HH:MM")
            hour, minute = int(match.group(1)), int(match.group(2))
            return dt.time(23, 59, 59, 999999) if hour == 24 else dt.time(hour, minute)
        if tp is dt.date:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                return self._fail(node, path, "a date YYYY-MM-DD")
        raise TypeError(f"schema has an unsupported field type {tp!r} at {path}")

    def _enum(self, node: yaml.Node, tp: type[enum.Enum], path: Path) -> Any:
        values = [str(m.value) for m in tp]
        if isinstance(node, yaml.ScalarNode):
            text = str(node.value)
            for member in tp:
                if str(member.value).lower() == text.lower():
                    return member
            self.problem(
                Mark.of(node),
                f"{describe(path)} has unknown value '{text[:40]}'{did_you_mean(text, values)}"
                f"; expected one of: {', '.join(values)}",
            )
            return INVALID
        return self._fail(node, path, "one of: " + ", ".join(values))

    def _expression(self, node: yaml.Node, path: Path) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self._fail(node, path, "an expression")
        source = str(node.value)
        try:
            return Expression.parse(source)
        except ExpressionError as exc:
            mark = Mark.of(node)
            # A plain or quoted scalar on one line: point at the offending character.
            if node.style in (None, "", "'", '"') and "\n" not in source:
                quote = 1 if node.style in ("'", '"') else 0
                mark = Mark(mark.line, mark.col + quote + min(exc.offset, len(source)))
            self.problem(mark, f"{context(path)} has a bad expression '{source[:60]}': {exc}")
            return INVALID

    def _ref(self, node: yaml.Node, ref: Ref, value: Any, path: Path) -> Any:
        text = str(value)
        mark = Mark.of(node)
        where = describe(path)
        bad: str | None = None
        if ref is Ref.KEY and text not in KEYS:
            bad = f"{where} has invalid key '{text}': keys are 0-9, * and #"
        elif ref is Ref.VARIABLE and not _IDENT.match(text):
            bad = f"{where} has invalid variable name '{text}': use letters, digits and _"
        elif ref is Ref.DIALECT and not _DIALECT.match(text):
            bad = f"{where} has invalid dialect code '{text}': expected a code like cmn, yue, en"
        elif ref is Ref.NUMBER and not _NUMBER.match(text):
            bad = f"{where} has '{text}', which is not a dialable number"
        elif ref is Ref.SIP_URI and not re.match(r"^(sips?|tel):[^\s]+$", text):
            bad = f"{where} must be a SIP URI (sip:user@host), got '{text}'"
        elif ref is Ref.TIMEZONE and text not in _zones():
            bad = f"{where} has unknown time zone '{text}'{did_you_mean(text, _zones())}"
        elif ref is Ref.URL and not re.match(r"^(https?://|\{)", text):
            bad = f"{where} must be an http:// or https:// URL, got '{text[:60]}'"
        elif ref in (Ref.TEMPLATE, Ref.URL):
            bad = self._template_problem(text, where)
        if bad is not None:
            self.problem(mark, bad)
            return INVALID
        if ref in (Ref.NODE, Ref.PROMPT, Ref.QUEUE, Ref.INTENT):
            self.refs.append(RefUse(ref, text, path, mark))
        return value

    @staticmethod
    def _template_problem(text: str, where: str) -> str | None:
        depth = 0
        for ch in text:
            depth += 1 if ch == "{" else -1 if ch == "}" else 0
            if depth not in (0, 1):
                return f"{where} has unbalanced braces in '{text[:60]}'"
        if depth != 0:
            return f"{where} has unbalanced braces in '{text[:60]}'"
        for name in _PLACEHOLDER.findall(text):
            if not _IDENT.match(name):
                return f"{where} has bad placeholder '{{{name}}}': use a variable name"
        return None

    # -- containers ---------------------------------------------------------------------------

    def _tuple(self, node: yaml.Node, item: Any, path: Path) -> Any:
        if (
            isinstance(node, yaml.ScalarNode)
            and not self._is_null(node)
            and typing.get_origin(item) is not tuple
        ):
            items: list[yaml.Node] = [node]  # a single value stands for a list of one
        elif isinstance(node, yaml.SequenceNode):
            items = list(node.value)
        else:
            return self._fail(node, path, "a list")
        out = [self.convert(child, item, (*path, str(i))) for i, child in enumerate(items)]
        return tuple(v for v in out if v is not INVALID)

    def _pairs(self, node: yaml.MappingNode, path: Path) -> list[tuple[str, yaml.Node, Mark]]:
        """Key text, value node, key mark; reports duplicate and non-scalar keys."""
        seen: dict[str, Mark] = {}
        pairs: list[tuple[str, yaml.Node, Mark]] = []
        for knode, vnode in node.value:
            kmark = Mark.of(knode)
            if not isinstance(knode, yaml.ScalarNode):
                self.problem(kmark, f"{describe(path)} has a key that is not a single value")
                continue
            key = str(knode.value)
            if key in seen:
                what = (
                    f"duplicate node id '{key}'"
                    if path == ("nodes",)
                    else f"{describe(path)} has duplicate key '{key}'"
                )
                self.problem(kmark, f"{what} (first defined at line {seen[key].line})")
                continue
            seen[key] = kmark
            self.key_marks[(*path, key)] = kmark
            pairs.append((key, vnode, kmark))
        return pairs

    def _mapping(self, node: yaml.Node, ktype: Any, vtype: Any, path: Path) -> Any:
        if self._is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            return self._fail(node, path, "a mapping")
        out: dict[Any, Any] = {}
        for key, vnode, kmark in self._pairs(node, path):
            if typing.get_origin(ktype) is typing.Annotated:
                key_node = yaml.ScalarNode("tag:yaml.org,2002:str", key, _StartMark(kmark), None)
                if self._convert(key_node, ktype, (*path, key), None) is INVALID:
                    continue
            value = self.convert(vnode, vtype, (*path, key), key)
            if value is not INVALID:
                out[key] = value
        return types.MappingProxyType(out)

    def _dataclass(self, node: yaml.Node, cls: type, path: Path, key: str | None) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self._fail(node, path, "a mapping")
        fields = yaml_fields(cls)
        is_node = issubclass(cls, Node)
        label = describe(path)
        if issubclass(cls, Node):
            label = f"node '{key}' ({cls.kind.value})"
        kwargs: dict[str, Any] = {}
        present: set[str] = set()
        broken = False
        for name, vnode, kmark in self._pairs(node, path):
            present.add(name)
            if is_node and name == "type":
                continue
            f = fields.get(name)
            if f is None:
                hint = did_you_mean(name, fields)
                self.problem(kmark, f"{label} has unknown field '{name}'{hint}")
                if hint:  # a misspelt field: what it stood for counts as broken, not as missing
                    self.failed.add((*path, hint.split("'")[1]))
                continue
            value = self.convert(vnode, field_type(cls, f.name), (*path, name))
            if value is INVALID:
                broken = broken or required(f)
                continue
            kwargs[f.name] = value
        for name, f in fields.items():
            if required(f) and name not in present:
                broken = True
                if (*path, name) not in self.failed:
                    self.problem(Mark.of(node), f"{label} is missing required field '{name}'")
        if broken:
            return INVALID
        for f in dataclasses.fields(cls):
            if f.metadata.get("from_key"):
                kwargs[f.name] = key or ""
        return cls(**kwargs)

    def _node(self, node: yaml.Node, path: Path, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self._fail(node, path, "a mapping with a 'type'")
        type_node = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "type"), None
        )
        names = [t.value for t in NodeType]
        if type_node is None:
            self.problem(Mark.of(node), f"node '{key}' has no type; expected one of: {', '.join(names)}")
            return INVALID
        text = str(type_node.value) if isinstance(type_node, yaml.ScalarNode) else ""
        try:
            kind = NodeType(text)
        except ValueError:
            self.problem(
                Mark.of(type_node),
                f"node '{key}' has unknown type '{text[:40]}'{did_you_mean(text, names)}",
            )
            return INVALID
        self.node_types[key] = kind
        return self._dataclass(node, NODE_TYPES[kind], path, key)


class _StartMark:
    """Lets a synthetic key node report the key's own position."""

    def __init__(self, mark: Mark) -> None:
        self.line = mark.line - 1
        self.column = mark.col - 1
