"""Commands: everything that can change ACD state, as data.

The distributor is fed only these (wrapped in a `LogEntry` that says which node sent it and when),
so that one ordered log of them, in process or in Redis, reproduces the same state on every node.
`encode_entry`/`decode_entry` turn an entry into JSON-safe dicts for the Redis stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ivr.acd.errors import BackendError
from ivr.acd.events import RingFailure
from ivr.call import QueueRequest
from ivr.dispatching import DispatchRequest


@dataclass(slots=True, frozen=True)
class Enqueue:
    call_id: str
    request: QueueRequest
    """The flow's request as it made it: the ACD keeps it, and every offer for the caller carries it."""


@dataclass(slots=True, frozen=True)
class Abandon:
    """The caller's leg ended (BYE, CANCEL, timeout) or the call layer gave up on the queue: the
    caller is withdrawn wherever they are, and every agent ringing for them stops at once."""

    call_id: str


@dataclass(slots=True, frozen=True)
class RequestCallback:
    call_id: str
    number: str


@dataclass(slots=True, frozen=True)
class RingAnswered:
    offer_id: str


@dataclass(slots=True, frozen=True)
class RingFailed:
    offer_id: str
    reason: RingFailure = RingFailure.NO_ANSWER


@dataclass(slots=True, frozen=True)
class AgentCallEnded:
    """A bridged call ended (either side hung up): the agent goes to wrap-up."""

    agent_id: str
    call_id: str | None = None
    """None: the agent's only call (an agent with several calls must name one)."""


@dataclass(slots=True, frozen=True)
class AgentLogin:
    agent_id: str
    contact: str


@dataclass(slots=True, frozen=True)
class AgentLogout:
    agent_id: str


@dataclass(slots=True, frozen=True)
class AgentPause:
    agent_id: str
    reason: str = "break"


@dataclass(slots=True, frozen=True)
class AgentResume:
    agent_id: str


@dataclass(slots=True, frozen=True)
class AgentWrapUpDone:
    """The agent ends their wrap-up early (API or feature code): available for the next caller now."""

    agent_id: str


@dataclass(slots=True, frozen=True)
class StartDispatch:
    request: DispatchRequest


@dataclass(slots=True, frozen=True)
class EndDispatch:
    dispatch_id: str


@dataclass(slots=True, frozen=True)
class Heartbeat:
    """The sending node is alive (its lease is renewed); any command from a node also renews it."""


@dataclass(slots=True, frozen=True)
class Tick:
    """Time passed: handle every deadline up to the entry's `now`."""


Command = (
    Enqueue
    | Abandon
    | RequestCallback
    | RingAnswered
    | RingFailed
    | AgentCallEnded
    | AgentLogin
    | AgentLogout
    | AgentPause
    | AgentResume
    | AgentWrapUpDone
    | StartDispatch
    | EndDispatch
    | Heartbeat
    | Tick
)

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Enqueue,
        Abandon,
        RequestCallback,
        RingAnswered,
        RingFailed,
        AgentCallEnded,
        AgentLogin,
        AgentLogout,
        AgentPause,
        AgentResume,
        AgentWrapUpDone,
        StartDispatch,
        EndDispatch,
        Heartbeat,
        Tick,
    )
}


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One command in the shared order, stamped by the node that sent it."""

    node: str
    cid: str
    """Unique per node: the sender waits for the entry with this id to be applied."""
    now: float
    """The sender's ACD clock when sending; the distributor never lets time run backwards."""
    wall: datetime
    command: Command
    entry_id: str = ""
    """The backend's position of the entry (Redis stream id; a counter in memory)."""


_NESTED: dict[tuple[type[Any], str], type[Any]] = {
    (Enqueue, "request"): QueueRequest,
    (StartDispatch, "request"): DispatchRequest,
}
"""Command fields holding a request record, encoded as a JSON object."""


def _encode_value(value: object) -> object:
    if isinstance(value, QueueRequest | DispatchRequest):
        return {f.name: _encode_value(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, RingFailure):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _decode_field(cls: type[Any], name: str, value: Any) -> Any:
    nested = _NESTED.get((cls, name))
    if nested is not None:
        return nested(**{k: _decode_field(nested, k, v) for k, v in value.items()})
    if name == "until":
        return None if value is None else datetime.fromisoformat(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def encode_entry(entry: LogEntry) -> str:
    """JSON text of an entry (without its backend id)."""
    cmd = entry.command
    body = {f.name: _encode_value(getattr(cmd, f.name)) for f in fields(cmd)}
    return json.dumps(
        {
            "node": entry.node,
            "cid": entry.cid,
            "now": entry.now,
            "wall": entry.wall.isoformat(),
            "type": type(cmd).__name__,
            "command": body,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_entry(text: str | bytes, entry_id: str) -> LogEntry:
    """Parse what `encode_entry` wrote; raises BackendError naming the entry when it cannot."""
    try:
        data = json.loads(text)
        cls = _TYPES[data["type"]]
        body = {k: _decode_field(cls, k, v) for k, v in data["command"].items()}
        if cls is RingFailed:
            body["reason"] = RingFailure(body.get("reason", RingFailure.NO_ANSWER.value))
        command = cls(**body)
        return LogEntry(
            node=str(data["node"]),
            cid=str(data["cid"]),
            now=float(data["now"]),
            wall=datetime.fromisoformat(data["wall"]),
            command=command,
            entry_id=entry_id,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"log entry {entry_id}: cannot decode command: {exc}") from exc
