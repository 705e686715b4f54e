"""What a flow value is, the bounds every value keeps, and how a value reads and tests.

Values are text, whole numbers, numbers, booleans, null and lists (tuples). Every value is bounded:
an expression runs on the event loop that serves every call, and Python's integers grow without
limit (`round(5, -10**21)` computes a number with 10^21 digits and never returns; `n * n` in a
loop doubles its digits each time round). Past a bound, `bounded` raises `EvaluationError`, which
the interpreter turns into the flow's error route like any failed node.
"""

from __future__ import annotations

import math

from ivr.flow.errors import EvaluationError

__all__ = [
    "MAX_ABS_INT", "MAX_LIST_ITEMS", "MAX_TEXT_CHARS", "Value", "bounded", "format_value", "truthy", "type_name",
]  # fmt: skip

Value = str | int | float | bool | None | tuple["Value", ...]

MAX_TEXT_CHARS = 10_000
MAX_ABS_INT = 10**18
"""Whole numbers beyond ±10^18 are refused: larger than any amount, policy or ID number a flow holds."""
MAX_LIST_ITEMS = 256
"""Items in a list, counting those of nested lists (`[l, l]` in a loop would double each time)."""


def type_name(v: Value) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "text"
    return "a list"


def truthy(v: Value) -> bool:
    return bool(v)


def format_value(v: Value) -> str:
    """How a value reads in a prompt, a URL or the call record."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, tuple):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def _items(v: Value, budget: int) -> int:
    """Items in `v` counting nested lists, stopping once past `budget` (shared sublists count each time)."""
    if not isinstance(v, tuple):
        return 0
    total = len(v)
    for x in v:
        if total > budget:
            break
        total += _items(x, budget - total)
    return total


def bounded(v: Value) -> Value:
    """`v` if it is within the bounds every value keeps, else `EvaluationError`."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if not -MAX_ABS_INT <= v <= MAX_ABS_INT:
            raise EvaluationError(f"number beyond ±10^{len(str(MAX_ABS_INT)) - 1}")
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise EvaluationError("number out of range")
    elif isinstance(v, str):
        if len(v) > MAX_TEXT_CHARS:
            raise EvaluationError(f"text longer than {MAX_TEXT_CHARS} characters")
    elif _items(v, MAX_LIST_ITEMS) > MAX_LIST_ITEMS:
        raise EvaluationError(f"list of more than {MAX_LIST_ITEMS} items")
    return v
