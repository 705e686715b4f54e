"""Targets: who a campaign calls, with the variables its flow greets them with.

From a CSV file (header row; `number` required; optional `id`, `timezone`, `priority`; every other
column becomes a flow variable) or from an API body (the same names as JSON keys).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from ivr.outbound.errors import TargetError

_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = frozenset({"id", "number", "timezone", "priority", "flow"})
MAX_TARGETS = 1_000_000


@dataclass(slots=True, frozen=True)
class Target:
    target_id: str
    number: str
    variables: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None
    """The callee's zone; None: the campaign's."""
    priority: int = 0
    flow: str | None = None
    """The flow to run instead of the campaign's (an event-triggered call may name its own)."""


def normalize_number(text: str) -> str:
    """Digits with an optional leading +; spaces, dashes and parentheses dropped."""
    return re.sub(r"[\s\-().]", "", text)


def make_target(values: Mapping[str, Any], default_id: str) -> Target:
    """One target from named values; raises `TargetError` naming the field at fault."""
    number = normalize_number(str(values.get("number") or ""))
    if not _NUMBER.match(number):
        raise TargetError(f"number '{values.get('number') or ''}' is not a dialable number")
    zone = values.get("timezone") or None
    if zone is not None and str(zone) not in available_timezones():
        raise TargetError(f"timezone '{zone}' is not a known time zone")
    try:
        priority = int(values.get("priority") or 0)
    except (TypeError, ValueError):
        raise TargetError(f"priority '{values.get('priority')}' is not a whole number") from None
    variables: dict[str, str] = {}
    for key, value in values.items():
        if key in RESERVED or key is None:
            continue
        if not _VARIABLE.match(str(key)):
            raise TargetError(f"column '{key}' is not a variable name (letters, digits and _)")
        if isinstance(value, (dict, list)):
            raise TargetError(f"variable '{key}' must be a single value")
        variables[str(key)] = "" if value is None else str(value)
    target_id = str(values.get("id") or default_id)
    flow = values.get("flow") or None
    return Target(target_id, number, variables, None if zone is None else str(zone), priority,
                  None if flow is None else str(flow))


def parse_targets_csv(text: str, path: str = "<targets>") -> list[Target]:
    """Every row a target, or `TargetError` naming `path:line` of the first bad row."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "number" not in reader.fieldnames:
        raise TargetError(f"{path}:1: the header row must have a 'number' column")
    out: list[Target] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            raise TargetError(f"{path}:{line}: more values than header columns")
        try:
            target = make_target(row, default_id=str(len(out) + 1))
        except TargetError as exc:
            raise TargetError(f"{path}:{line}: {exc}") from None
        if target.target_id in seen:
            first = seen[target.target_id]
            raise TargetError(f"{path}:{line}: duplicate id '{target.target_id}' (first at line {first})")
        seen[target.target_id] = line
        out.append(target)
        if len(out) > MAX_TARGETS:
            raise TargetError(f"{path}:{line}: more than {MAX_TARGETS} targets")
    return out


def read_targets_csv(path: Path) -> list[Target]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TargetError(f"{path}: cannot read targets: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{path}: targets file is not UTF-8 text") from None
    return parse_targets_csv(text, str(path))


def read_do_not_call(lines: Iterable[str]) -> frozenset[str]:
    """Numbers never to call: one per line, `#` comments and blank lines ignored."""
    numbers = (normalize_number(line.split("#", 1)[0]) for line in lines)
    return frozenset(n for n in numbers if n)
