"""What the store reads and writes: queries, pages, call details, dispatch entries, and their codecs.

Rows go to and from the database through `record_params`/`record_from_row` and the event twins; JSON
for the API through `record_to_json`/`event_to_json`; CSV through `CSV_COLUMNS`/`record_to_csv_row`.
Times are always timezone-aware UTC on the way in and out (a naive datetime is taken as UTC).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr.dispatching import DispatchChange
from ivr.dispatching import DispatchEntry as DispatchEntry  # re-exported: the store keeps these
from ivr.journey import CallRecord, Direction, JourneyEvent, Outcome
from ivr.store.errors import BadQuery, BadSurveyScore

MAX_PAGE = 1000
"""The largest `limit` a calls query accepts."""

CALL_COLUMNS: tuple[str, ...] = (
    "call_id",
    "caller",
    "dialed",
    "started_at",
    "flow_id",
    "flow_version",
    "answered_at",
    "ended_at",
    "dialect",
    "transcript",
    "intent",
    "confidence",
    "path",
    "queue",
    "wait_s",
    "agent_id",
    "outcome",
    "survey_score",
    "breakpoint_node",
    "variables",
    "direction",
)
"""The `calls` columns that mirror `CallRecord` fields, in field order."""

EVENT_COLUMNS: tuple[str, ...] = ("call_id", "seq", "at", "node", "kind", "data", "breakpoint")

CSV_COLUMNS: tuple[str, ...] = CALL_COLUMNS


@dataclass(slots=True, frozen=True)
class CallQuery:
    """Which calls to list: filters (all optional) and one page of them, newest first."""

    since: datetime | None = None
    """Calls started at or after this time."""
    until: datetime | None = None
    """Calls started before this time."""
    intent: str | None = None
    queue: str | None = None
    outcome: Outcome | None = None
    in_progress: bool | None = None
    """True: only calls still running; False: only finished ones."""
    dialect: str | None = None
    caller: str | None = None
    node_id: str | None = None
    """Only calls taken by this engine node (a cluster shares one database)."""
    direction: Direction | None = None
    """Only calls in (callers who dialled) or out (placed by campaigns and the outbound API)."""
    limit: int = 50
    offset: int = 0
    cursor: str | None = None
    """An opaque `next_cursor` from a previous page; replaces `offset`."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise BadQuery(f"limit must be between 1 and {MAX_PAGE}, got {self.limit}")
        if self.offset < 0:
            raise BadQuery(f"offset must not be negative, got {self.offset}")
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(slots=True, frozen=True)
class CallPage:
    records: list[CallRecord]
    next_cursor: str | None
    """Pass as `cursor` for the next (older) page; None on the last page."""
    nodes: dict[str, str] = field(default_factory=dict)
    """The engine node that took each call (call_id → node_id): in a cluster every node lists all calls."""


@dataclass(slots=True, frozen=True)
class CallDetail:
    record: CallRecord
    journey: list[JourneyEvent]
    in_progress: bool


DispatchAction = DispatchChange
"""What a dispatch log entry records: the one dispatch enum (ivr.dispatching); its values are the log's words."""


@dataclass(slots=True, frozen=True)
class Committed:
    """What one writer transaction made durable; passed to `on_commit` listeners."""

    calls_started: int = 0
    calls_finished: int = 0
    events: int = 0
    surveys: int = 0
    dispatches: int = 0
    call_ids: tuple[str, ...] = field(default=())
    """Calls whose record changed."""


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken as UTC already."""
    if value.tzinfo is UTC:  # the clock's own times: as they are
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def ts_text(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so text order is time order (SQLite keeps times as text)."""
    return utc(value).isoformat(timespec="microseconds")


def ts_parse(value: object) -> datetime:
    """A time read back from either backend (text from SQLite, datetime from PostgreSQL)."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value))
    raise TypeError(f"expected a time, got {type(value).__name__}")


def _opt_ts(value: object) -> datetime | None:
    return None if value is None else ts_parse(value)


def json_value(value: object) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def check_score(score: int) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise BadSurveyScore(f"survey score must be an integer 0..10, got {score!r}")
    return score


def _record_fields(record: CallRecord) -> dict[str, Any]:
    """The record as plain values in `CALL_COLUMNS` order (times UTC, outcome as its value)."""
    return {
        "call_id": record.call_id,
        "caller": record.caller,
        "dialed": record.dialed,
        "started_at": utc(record.started_at),
        "flow_id": record.flow_id,
        "flow_version": record.flow_version,
        "answered_at": None if record.answered_at is None else utc(record.answered_at),
        "ended_at": None if record.ended_at is None else utc(record.ended_at),
        "dialect": record.dialect,
        "transcript": record.transcript,
        "intent": record.intent,
        "confidence": record.confidence,
        "path": list(record.path),
        "queue": record.queue,
        "wait_s": record.wait_s,
        "agent_id": record.agent_id,
        "outcome": None if record.outcome is None else record.outcome.value,
        "survey_score": record.survey_score,
        "breakpoint_node": record.breakpoint_node,
        "variables": dict(record.variables),
        "direction": record.direction.value,
    }


_TO_JSON = json.JSONEncoder(ensure_ascii=False).encode
_DATA_TO_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""`json.dumps` with these options, without building an encoder for every row (each call writes several)."""


def record_row(record: CallRecord) -> tuple[object, ...]:
    """Column values for a `calls` row in `CALL_COLUMNS` order (times as UTC datetimes, at `CALL_TIMES`: the
    backend encodes them; path and variables as JSON text). A tuple built at once: a call writes its
    record twice, and a dict per row then a tuple from it was most of the store's share of a call."""
    if record.survey_score is not None:
        check_score(record.survey_score)
    answered, ended, outcome = record.answered_at, record.ended_at, record.outcome
    return (
        record.call_id, record.caller, record.dialed, utc(record.started_at), record.flow_id, record.flow_version,
        None if answered is None else utc(answered), None if ended is None else utc(ended), record.dialect,
        record.transcript, record.intent, record.confidence, _TO_JSON(list(record.path)), record.queue,
        record.wait_s, record.agent_id, None if outcome is None else outcome.value, record.survey_score,
        record.breakpoint_node, _TO_JSON(dict(record.variables)), record.direction.value,
    )


CALL_TIMES: tuple[int, ...] = tuple(CALL_COLUMNS.index(c) for c in ("started_at", "answered_at", "ended_at"))
"""Where `record_row` has times (the only values a backend encodes)."""


def record_params(record: CallRecord) -> dict[str, object]:
    """Column values for a `calls` row by name (times as datetimes; the backend encodes them)."""
    return dict(zip(CALL_COLUMNS, record_row(record), strict=True))


def record_from_row(row: Sequence[object]) -> CallRecord:
    """A `CallRecord` from a row selected as `CALL_COLUMNS`."""
    v = dict(zip(CALL_COLUMNS, row, strict=True))
    return CallRecord(
        call_id=str(v["call_id"]),
        caller=str(v["caller"]),
        dialed=str(v["dialed"]),
        started_at=ts_parse(v["started_at"]),
        flow_id=str(v["flow_id"]),
        flow_version=str(v["flow_version"]),
        answered_at=_opt_ts(v["answered_at"]),
        ended_at=_opt_ts(v["ended_at"]),
        dialect=str(v["dialect"]),
        transcript=str(v["transcript"]),
        intent=str(v["intent"]),
        confidence=None if v["confidence"] is None else float(v["confidence"]),  # type: ignore[arg-type]
        path=[str(p) for p in json_value(v["path"])],
        queue=str(v["queue"]),
        wait_s=None if v["wait_s"] is None else float(v["wait_s"]),  # type: ignore[arg-type]
        agent_id=str(v["agent_id"]),
        outcome=None if v["outcome"] is None else Outcome(v["outcome"]),
        survey_score=None if v["survey_score"] is None else int(v["survey_score"]),  # type: ignore[call-overload]
        breakpoint_node=str(v["breakpoint_node"]),
        variables={str(k): str(x) for k, x in json_value(v["variables"]).items()},
        direction=Direction(v["direction"]),
    )


def event_row(event: JourneyEvent) -> tuple[object, ...]:
    """Column values for a `journey_events` row in `EVENT_COLUMNS` order (its time at `EVENT_TIMES`)."""
    return (event.call_id, event.seq, utc(event.at), event.node, event.kind, _DATA_TO_JSON(dict(event.data)),
            bool(event.breakpoint))


EVENT_TIMES: tuple[int, ...] = (EVENT_COLUMNS.index("at"),)


def event_params(event: JourneyEvent) -> dict[str, object]:
    return dict(zip(EVENT_COLUMNS, event_row(event), strict=True))


def event_from_row(row: Sequence[object]) -> JourneyEvent:
    v = dict(zip(EVENT_COLUMNS, row, strict=True))
    return JourneyEvent(
        call_id=str(v["call_id"]),
        seq=int(v["seq"]),  # type: ignore[call-overload]
        at=ts_parse(v["at"]),
        node=str(v["node"]),
        kind=str(v["kind"]),
        data=dict(json_value(v["data"])),
        breakpoint=bool(v["breakpoint"]),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


def record_to_json(record: CallRecord, *, node: str | None = None) -> dict[str, Any]:
    """The API's JSON object for a call record (times as ISO-8601 UTC, outcome as its value), with
    `node_id` when the `node` that took it is given (`CallPage.nodes`)."""
    fields = _record_fields(record)
    for name in ("started_at", "answered_at", "ended_at"):
        fields[name] = _iso(fields[name])
    if node is not None:
        fields["node_id"] = node
    return fields


def event_to_json(event: JourneyEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": _iso(event.at),
        "node": event.node,
        "kind": event.kind,
        "data": dict(event.data),
        "breakpoint": event.breakpoint,
    }


def detail_to_json(detail: CallDetail) -> dict[str, Any]:
    return {
        "record": record_to_json(detail.record),
        "in_progress": detail.in_progress,
        "journey": [event_to_json(e) for e in detail.journey],
    }


def record_to_csv_row(record: CallRecord) -> list[str]:
    """One CSV row in `CSV_COLUMNS` order: lists and maps as JSON, missing values empty."""
    row: list[str] = []
    for name, value in record_to_json(record).items():
        if value is None:
            row.append("")
        elif name in ("path", "variables"):
            row.append(json.dumps(value, ensure_ascii=False))
        else:
            row.append(str(value))
    return row


def encode_cursor(started_at: datetime, call_id: str) -> str:
    raw = json.dumps([ts_text(started_at), call_id], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(started_at, call_id) of the last call of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, call_id = json.loads(raw)
        return ts_parse(started), str(call_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadQuery(f"bad cursor {cursor!r}: not one returned as next_cursor") from exc


def dispatch_to_json(entry: DispatchEntry) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "action": entry.action.value,
        "accepted": entry.accepted,
        "dispatch_id": entry.dispatch_id,
        "region": entry.region,
        "queues": list(entry.queues),
        "helper_sites": list(entry.helper_sites),
        "until": _iso(entry.until),
        "reason": entry.reason,
        "requested_by": entry.requested_by,
        "detail": entry.detail,
    }


DISPATCH_COLUMNS: tuple[str, ...] = (
    "at",
    "action",
    "accepted",
    "dispatch_id",
    "region",
    "queues",
    "helper_sites",
    "until_at",
    "reason",
    "requested_by",
    "detail",
)
"""The dispatch_log columns `dispatch_params` fills and `dispatch_from_row` reads, in this order."""


def dispatch_params(entry: DispatchEntry) -> dict[str, object]:
    """The entry as column values (times UTC, lists as JSON text)."""
    return {
        "at": utc(entry.at),
        "action": entry.action.value,
        "accepted": entry.accepted,
        "dispatch_id": entry.dispatch_id,
        "region": entry.region,
        "queues": json.dumps(list(entry.queues), ensure_ascii=False),
        "helper_sites": json.dumps(list(entry.helper_sites), ensure_ascii=False),
        "until_at": None if entry.until is None else utc(entry.until),
        "reason": entry.reason,
        "requested_by": entry.requested_by,
        "detail": entry.detail,
    }


def dispatch_from_row(row: Sequence[Any]) -> DispatchEntry:
    """A `DispatchEntry` from a row of `DISPATCH_COLUMNS` (either backend)."""
    data = dict(zip(DISPATCH_COLUMNS, row, strict=True))
    return DispatchEntry(
        at=ts_parse(data["at"]),
        action=DispatchAction(data["action"]),
        accepted=bool(data["accepted"]),
        dispatch_id=str(data["dispatch_id"]),
        region=str(data["region"]),
        queues=tuple(str(q) for q in json_value(data["queues"])),
        helper_sites=tuple(str(s) for s in json_value(data["helper_sites"])),
        until=_opt_ts(data["until_at"]),
        reason=str(data["reason"]),
        requested_by=str(data["requested_by"]),
        detail=str(data["detail"]),
    )
