"""The OpenAPI 3.1 description of the HTTP API, served at /api/openapi.json (and read by /api/docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr import __version__
from ivr.journey import Direction, Outcome
from ivr.outbound.model import Result
from ivr.outbound.state import Status
from ivr.store import CSV_COLUMNS, DispatchAction
from ivr.web.access import Role, TokenSource
from ivr.web.sources import AgentPresence, DispatchChangeKind, FlowLoadStatus

_S = dict[str, Any]


def _ref(name: str) -> _S:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: _S, required: tuple[str, ...] = ()) -> _S:
    schema: _S = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


def _nullable(type_name: str, **extra: Any) -> _S:
    return {"type": [type_name, "null"], **extra}


_STR: _S = {"type": "string"}
_INT: _S = {"type": "integer"}
_NUM: _S = {"type": "number"}
_TIME: _S = {"type": "string", "format": "date-time"}
_RATIO: _S = _nullable("number", minimum=0, maximum=1, description="null when the denominator is 0")
_COUNTS: _S = {"type": "object", "additionalProperties": _INT}
_ROLE: _S = {"type": "string", "enum": [r.value for r in Role]}
_STATUS: _S = {"type": "object", "properties": {"status": _STR}, "required": ["status"]}


def _query(name: str, description: str, schema: _S | None = None) -> _S:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _STR,
    }


def _path(name: str, description: str) -> _S:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _STR}


def _json(description: str, schema: _S) -> _S:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json("Error", _ref("Error"))
_TIME_HELP = "A span back from now (90s, 15m, 2h, 1d, 1w), 'today', 'now' or ISO-8601."

_FILTERS = [
    _query("since", f"Calls started at or after. {_TIME_HELP}"),
    _query("until", f"Calls started before. {_TIME_HELP}"),
    _query("intent", "Only this intent."),
    _query("queue", "Only calls that joined this queue."),
    _query(
        "outcome",
        "Only this outcome.",
        {"type": "string", "enum": [o.value for o in Outcome] + ["in-progress"]},
    ),
    _query("dialect", "Only this dialect code (cmn, yue, hak, nan...)."),
    _query("caller", "Only this caller number."),
    _query("node_id", "Only calls taken by this engine node (a cluster shares one database)."),
    _query("direction", "Only calls in (callers who dialled) or out (placed by campaigns).",
           {"type": "string", "enum": [d.value for d in Direction]}),
]

_SCHEMAS: _S = {
    "Error": _obj({"error": _STR}, ("error",)),
    "TokenInfo": _obj(
        {"name": _STR, "role": _ROLE, "source": {"type": "string", "enum": [t.value for t in TokenSource]}},
        ("name", "role", "source"),
    ),
    "CallRecord": _obj(
        {
            "call_id": _STR,
            "caller": _STR,
            "dialed": _STR,
            "started_at": _TIME,
            "flow_id": _STR,
            "flow_version": _STR,
            "answered_at": _nullable("string", format="date-time"),
            "ended_at": _nullable("string", format="date-time"),
            "dialect": _STR,
            "transcript": _STR,
            "intent": _STR,
            "confidence": _nullable("number"),
            "path": {"type": "array", "items": _STR},
            "queue": _STR,
            "wait_s": _nullable("number"),
            "agent_id": _STR,
            "outcome": {"type": ["string", "null"], "enum": [o.value for o in Outcome] + [None]},
            "survey_score": _nullable("integer", minimum=0, maximum=10),
            "breakpoint_node": _STR,
            "variables": {"type": "object", "additionalProperties": _STR},
            "direction": {"type": "string", "enum": [d.value for d in Direction]},
            "node_id": {"type": "string", "description": "The engine node that took the call (GET /api/calls)."},
        },
        ("call_id", "caller", "dialed", "started_at"),
    ),
    "JourneyEvent": _obj(
        {
            "seq": _INT,
            "at": _TIME,
            "node": _STR,
            "kind": _STR,
            "data": {"type": "object", "description": "What the caller had told us at this step, and more."},
            "breakpoint": {"type": "boolean", "description": "Self-service failed at this step."},
        },
        ("seq", "at", "node", "kind", "breakpoint"),
    ),
    "CallDetail": _obj(
        {
            "record": _ref("CallRecord"),
            "in_progress": {"type": "boolean"},
            "journey": {"type": "array", "items": _ref("JourneyEvent")},
        },
        ("record", "in_progress", "journey"),
    ),
    "CallPage": _obj(
        {
            "calls": {"type": "array", "items": _ref("CallRecord")},
            "next_cursor": _nullable("string", description="Pass as cursor= for the next (older) page."),
            "limit": _INT,
            "offset": _INT,
        },
        ("calls", "next_cursor"),
    ),
    "VoiceMessage": _obj(
        {
            "id": _INT,
            "call_id": _STR,
            "caller": _STR,
            "queue": _STR,
            "dialect": _STR,
            "created_at": _TIME,
            "duration_s": _NUM,
            "ended_by": {"type": "string", "enum": ["terminator", "silence", "max_length", "hangup"]},
            "transcript": _STR,
            "confidence": _nullable("number", description="The recognizer's confidence; null: nothing heard."),
            "follow_up": {"type": "string", "description": "`campaign:ID/TARGET` or `queue:NAME`."},
            "audio": {"type": "string", "description": "URL of the WAV (needs the same token)."},
            "kind": {"type": "string", "enum": ["message", "survey"],
                     "description": "A voice message, or a detractor's comment after the survey score."},
            "survey_score": _nullable("integer", description="The score a survey comment explains."),
        },
        ("id", "call_id", "caller", "queue", "created_at", "duration_s", "ended_by", "transcript", "audio"),
    ),
    "OutboundCall": _obj(
        {
            "id": _STR,
            "campaign": _STR,
            "number": _STR,
            "flow": _nullable("string", description="null: the campaign's flow."),
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "attempts": _INT,
            "next_at": _TIME,
            "last_result": {"type": ["string", "null"], "enum": [r.value for r in Result] + [None]},
            "result_code": _nullable("string", description="What the flow set as the call's result."),
        },
        ("id", "campaign", "number", "status", "attempts", "next_at"),
    ),
    "CampaignProgress": _obj(
        {
            "campaign": _STR,
            "paused": {"type": "boolean"},
            "targets": _INT,
            "attempted": _INT,
            "completed": {"type": "integer", "description": "Finished with a completing result code, no human."},
            "done": _INT,
            "completion_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "completed / targets."},
            "results": _COUNTS,
        },
        ("campaign", "paused", "targets", "attempted", "completed", "done", "completion_rate", "results"),
    ),
    "Queue": _obj(
        {
            "queue": _STR,
            "waiting": _INT,
            "longest_wait_s": _NUM,
            "agents_available": _INT,
            "agents_in_call": _INT,
        },
        ("queue", "waiting", "longest_wait_s"),
    ),
    "Agent": _obj(
        {
            "agent_id": _STR,
            "name": _STR,
            "state": {"type": "string", "enum": [s.value for s in AgentPresence]},
            "since": _nullable("string", format="date-time"),
            "queues": {"type": "array", "items": _STR},
            "region": _STR,
            "call_id": _nullable("string"),
            "pause_reason": _nullable("string", description="Why the agent is on break (`no_answer`: paused "
                                      "automatically after missed offers)."),
            "today": _obj({"day": _STR, "calls": _INT, "talk_s": {"type": "number"}, "pauses": _INT,
                           "paused_s": {"type": "number"}}, ()),
        },
        ("agent_id", "state"),
    ),
    "AgentCurrent": _obj(
        {
            "agent": _ref("Agent"),
            "call": {
                "oneOf": [
                    {"type": "null"},
                    _obj(
                        {
                            "call_id": _STR,
                            "caller": _STR,
                            "queue": _STR,
                            "dialect": _STR,
                            "wait_s": _NUM,
                            "answered_at": _nullable("string", format="date-time"),
                            "context": {"type": "object", "additionalProperties": _STR},
                        }
                    ),
                ]
            },
            "record": {"oneOf": [{"type": "null"}, _ref("CallRecord")]},
            "journey": {"type": "array", "items": _ref("JourneyEvent")},
            "breakpoints": {"type": "array", "items": _ref("JourneyEvent")},
        },
        ("agent", "call", "journey"),
    ),
    "Flow": _obj(
        {
            "flow_id": _STR,
            "version": _STR,
            "status": {"type": "string", "enum": [s.value for s in FlowLoadStatus]},
            "loaded_at": _nullable("string", format="date-time"),
            "errors": {"type": "array", "items": _STR},
            "path": _STR,
        },
        ("flow_id", "version", "status", "errors"),
    ),
    "DispatchRequest": _obj(
        {
            "region": {**_STR, "description": "The region whose queues need help.", "examples": ["south"]},
            "queues": {
                "type": "array",
                "items": _STR,
                "description": "Queues of the region to help; omitted or [] = all of the region's queues.",
            },
            "helper_sites": {
                "type": "array",
                "items": _STR,
                "minItems": 1,
                "description": "Sites whose agents may serve those queues.",
                "examples": [["beijing"]],
            },
            "until": _nullable(
                "string", format="date-time", description="When it ends by itself (with a time zone, in the "
                "future); null or omitted = until ended by DELETE."
            ),
            "reason": _STR,
            "requested_by": {
                **_STR,
                "deprecated": True,
                "description": "Ignored: the dispatch is recorded as requested by the token's name.",
            },
        },
        ("region", "helper_sites"),
    )
    | {"additionalProperties": False},
    "Dispatch": _obj(
        {
            "id": {**_STR, "description": "The ACD's dispatch id (\"night\" for the night rule)."},
            "region": _STR,
            "queues": {"type": "array", "items": _STR},
            "helper_sites": {"type": "array", "items": _STR},
            "since": _TIME,
            "until": _nullable("string", format="date-time"),
            "reason": _STR,
            "requested_by": _STR,
            "ended_at": {**_TIME, "description": "Only in the answer to DELETE."},
        },
        ("id", "region", "queues", "helper_sites", "since", "until"),
    ),
    "DispatchChange": _obj(
        {
            "change": {"type": "string", "enum": [k.past_tense for k in DispatchChangeKind]},
            "at": _TIME,
            "dispatch": _ref("Dispatch"),
        },
        ("change", "at", "dispatch"),
    ),
    "DispatchLogEntry": _obj(
        {
            "at": _TIME,
            "action": {"type": "string", "enum": [a.value for a in DispatchAction]},
            "accepted": {"type": "boolean"},
            "dispatch_id": _STR,
            "region": _STR,
            "queues": {"type": "array", "items": _STR},
            "helper_sites": {"type": "array", "items": _STR},
            "until": _nullable("string", format="date-time"),
            "reason": _STR,
            "requested_by": _STR,
            "detail": {**_STR, "description": "Why it was refused."},
        },
        ("at", "action", "accepted"),
    ),
    "DispatchList": _obj(
        {
            "active": {"type": "array", "items": _ref("Dispatch"), "description": "In force now."},
            "changes": {
                "type": "array",
                "items": _ref("DispatchChange"),
                "description": "The ACD's changes since this engine started, oldest first.",
            },
            "log": {
                "type": "array",
                "items": _ref("DispatchLogEntry"),
                "description": "The recorded dispatch log (requests accepted or refused, expiries, night "
                "hours), newest first.",
            },
        },
        ("active", "changes", "log"),
    ),
    "DialectUpdate": _obj({"dialect": {**_STR, "examples": ["yue"]}}, ("dialect",)),
    "Summary": _obj(
        {
            "since": _TIME,
            "until": _TIME,
            "calls": _INT,
            "finished": _INT,
            "in_progress": _INT,
            "interrupted": _INT,
            "self_served": _INT,
            "containment": {**_RATIO, "description": "self_served / finished"},
            "offered": {**_INT, "description": "Calls that joined a human queue."},
            "answered": _INT,
            "abandoned": _INT,
            "answer_rate": _RATIO,
            "abandon_rate": _RATIO,
            "asa_s": _nullable("number", description="Average speed of answer, seconds."),
            "service_level": {**_RATIO, "description": "Answered within service_level_s / offered."},
            "service_level_s": _NUM,
            "surveys": _INT,
            "promoters": _INT,
            "detractors": _INT,
            "nps": _nullable("number", minimum=-100, maximum=100, description="% 9-10 minus % 0-6."),
            "intent_mix": _COUNTS,
            "dialects": _COUNTS,
            "breakpoints": {
                "type": "array",
                "items": _obj({"node": _STR, "steps": _INT, "calls": _INT, "rescued": _INT}),
            },
            "funnel": {"type": "array", "items": _obj({"stage": _STR, "calls": _INT})},
        },
        ("calls", "containment", "nps", "service_level"),
    ),
}


def _op(summary: str, tag: str, responses: _S, **extra: Any) -> _S:
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


_PATHS: _S = {
    "/api/calls": {
        "get": _op(
            "List calls, newest first, with filters and paging (offset or cursor).",
            "calls",
            {"200": _json("A page of calls", _ref("CallPage")), "400": _ERROR},
            parameters=[
                *_FILTERS,
                _query("limit", "Page size, 1..1000 (default 50).", _INT),
                _query("offset", "Skip this many calls (ignored with cursor).", _INT),
                _query("cursor", "next_cursor of the previous page."),
            ],
        )
    },
    "/api/calls/{call_id}": {
        "get": _op(
            "One call: its record and its journey, breakpoints marked.",
            "calls",
            {"200": _json("The call", _ref("CallDetail")), "404": _ERROR},
            parameters=[_path("call_id", "The call's id (SIP Call-ID).")],
        )
    },
    "/api/calls.csv": {
        "get": _op(
            "Every call matching the filters as CSV (UTF-8 with BOM).",
            "calls",
            {
                "200": {
                    "description": f"CSV with columns {', '.join(CSV_COLUMNS)}",
                    "content": {"text/csv": {"schema": _STR}},
                },
                "400": _ERROR,
            },
            parameters=_FILTERS,
        )
    },
    "/api/queues": {
        "get": _op(
            "Queues now: callers waiting, longest wait, agents.",
            "live",
            {"200": _json("Queues", _obj({"queues": {"type": "array", "items": _ref("Queue")}}))},
        )
    },
    "/api/agents": {
        "get": _op(
            "Agents now, and counts by state.",
            "live",
            {
                "200": _json(
                    "Agents",
                    _obj({"agents": {"type": "array", "items": _ref("Agent")}, "by_state": _COUNTS}),
                )
            },
        )
    },
    "/api/agents/{agent_id}/current": {
        "get": _op(
            "Agent screen-pop: the call on hand with what the IVR learned and its journey.",
            "live",
            {"200": _json("The agent and current call", _ref("AgentCurrent")), "404": _ERROR},
            parameters=[_path("agent_id", "The agent's id.")],
        )
    },
    "/api/flows": {
        "get": _op(
            "Flows in service: version, load status, load errors.",
            "live",
            {"200": _json("Flows", _obj({"flows": {"type": "array", "items": _ref("Flow")}}))},
        )
    },
    "/api/dispatch": {
        "get": _op(
            "Dispatches in force, the changes since start, and the recorded dispatch log.",
            "actions",
            {"200": _json("Dispatches", _ref("DispatchList")), "400": _ERROR, "503": _ERROR},
            parameters=[_query("limit", "Log entries to return, 1..1000 (default 50).", _INT)],
        ),
        "post": _op(
            "Emergency cross-region dispatch: lend helper sites' agents to a region's queues "
            "(logged, accepted or not).",
            "actions",
            {
                "201": _json("Dispatched", _ref("Dispatch")),
                "400": _ERROR,
                "409": _json("Refused by the ACD (unknown region, queue or site)", _ref("Error")),
                "503": _ERROR,
            },
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ref("DispatchRequest")}},
            },
        ),
    },
    "/api/dispatch/{dispatch_id}": {
        "delete": _op(
            "End a dispatch now: the helper sites' agents stop serving its queues (logged, accepted or not).",
            "actions",
            {
                "200": _json("Ended", _ref("Dispatch")),
                "404": _ERROR,
                "409": _json("Refused (already ended or expired, or the night rule)", _ref("Error")),
                "503": _ERROR,
            },
            parameters=[_path("dispatch_id", "The id POST /api/dispatch answered with.")],
        )
    },
    "/api/callers/{number}/dialect": {
        "put": _op(
            "Set the dialect a caller is served in from now on.",
            "actions",
            {
                "200": _json("Saved", _obj({"caller": _STR, "dialect": _STR})),
                "400": _ERROR,
                "503": _ERROR,
            },
            parameters=[_path("number", "The caller's number.")],
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ref("DialectUpdate")}},
            },
        )
    },
    "/api/reports/summary": {
        "get": _op(
            "Summary figures for calls started in [since, until).",
            "reports",
            {"200": _json("Summary", _ref("Summary")), "400": _ERROR},
            parameters=[
                _query("since", f"Default 1d. {_TIME_HELP}"),
                _query("until", f"Default now. {_TIME_HELP}"),
            ],
        )
    },
    "/api/events": {
        "get": _op(
            "Server-Sent Events: `live` (live snapshot JSON) and `calls` (records committed).",
            "live",
            {"200": {"description": "An event stream", "content": {"text/event-stream": {"schema": _STR}}}},
        )
    },
    "/api/messages": {
        "get": _op(
            "Voice messages callers left (`message` nodes), newest first, with transcript and follow-up task.",
            "messages",
            {
                "200": _json("A page of messages", _obj({
                    "messages": {"type": "array", "items": _ref("VoiceMessage")},
                    "next_before": _nullable("integer", description="Pass as `before` for the next page."),
                }, ("messages", "next_before"))),
                "400": _ERROR,
            },
            parameters=[
                _query("limit", "1 to 200, default 50.", _INT),
                _query("before", "Only messages with a smaller id (paging).", _INT),
                _query("queue", "Only this queue's messages."),
            ],
        )
    },
    "/api/messages/themes": {
        "get": _op(
            "Voice of the customer: voice-message transcripts grouped by need (the flows' intent classifier) and "
            "by theme (zh + en keyword clustering), with counts per day and queue and examples.",
            "messages",
            {
                "200": _json("The analysis", _obj({
                    "since": _TIME, "until": _TIME, "total": _INT, "other": _INT,
                    "by_need": {"type": "object", "additionalProperties": _INT},
                    "by_day": {"type": "object", "additionalProperties": _INT},
                    "by_queue": {"type": "object", "additionalProperties": _INT},
                    "by_source": {"type": "object", "additionalProperties": _INT},
                    "needs_by_day": {"type": "object"},
                    "themes": {"type": "array", "items": _obj({
                        "term": _STR, "count": _INT, "needs": {"type": "object"},
                        "examples": {"type": "array", "items": _STR},
                    }, ("term", "count", "needs", "examples"))},
                }, ("since", "until", "total", "by_need", "by_day", "by_queue", "themes", "other"))),
                "400": _ERROR,
            },
            parameters=[
                _query("since", "Default 7d. A span back (90m, 2h, 1d, 1w), today, or ISO 8601."),
                _query("until", "Default now; same forms."),
            ],
        )
    },
    "/api/messages/{message_id}/audio": {
        "get": _op(
            "A voice message's audio (8 kHz 16-bit mono WAV).",
            "messages",
            {
                "200": {"description": "The WAV", "content": {"audio/wav": {"schema": _STR}}},
                "400": _ERROR,
                "404": _json("No such message, or its file is gone", _ref("Error")),
            },
            parameters=[_path("message_id", "The message's id.")],
        )
    },
    "/api/outbound/calls": {
        "post": _op(
            "Queue one outbound call in a campaign, now or at not_before (e.g. on a failed premium payment).",
            "outbound",
            {
                "201": _json("Queued (Location: its URL)", _ref("OutboundCall")),
                "400": _ERROR,
                "404": _json("No such campaign", _ref("Error")),
                "409": _json("That id exists in the campaign", _ref("Error")),
            },
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _obj(
                            {
                                "number": _STR,
                                "campaign": _STR,
                                "flow": _STR,
                                "variables": {"type": "object", "description": "Flow variables for this call."},
                                "not_before": {**_TIME, "description": "With a time zone offset."},
                                "priority": _INT,
                                "timezone": _STR,
                                "id": {"type": "string", "description": "Default: a new random id."},
                            },
                            ("number", "campaign"),
                        )
                    }
                },
            },
        )
    },
    "/api/outbound/calls/{call_id}": {
        "get": _op(
            "One outbound call's state: pending, dialing or done, attempts and result.",
            "outbound",
            {"200": _json("The call", _ref("OutboundCall")), "404": _ERROR},
            parameters=[_path("call_id", "The id given (or returned) when the call was queued.")],
        )
    },
    "/api/campaigns": {
        "get": _op(
            "Every campaign's progress.",
            "outbound",
            {"200": _json("Campaigns", _obj({"campaigns": {"type": "array", "items": _ref("CampaignProgress")}}))},
        )
    },
    "/api/campaigns/{campaign}": {
        "get": _op(
            "One campaign's progress.",
            "outbound",
            {"200": _json("Progress", _ref("CampaignProgress")), "404": _ERROR},
            parameters=[_path("campaign", "The campaign's id.")],
        )
    },
    "/api/campaigns/{campaign}/pause": {
        "post": _op(
            "Stop placing new calls in a campaign (calls in progress go on).",
            "outbound",
            {"200": _json("Progress, paused", _ref("CampaignProgress")), "404": _ERROR},
            parameters=[_path("campaign", "The campaign's id.")],
        )
    },
    "/api/campaigns/{campaign}/resume": {
        "post": _op(
            "Place calls in a paused campaign again.",
            "outbound",
            {"200": _json("Progress, running", _ref("CampaignProgress")), "404": _ERROR},
            parameters=[_path("campaign", "The campaign's id.")],
        )
    },
    "/": {
        "get": _op(
            "The ops dashboard (asks for a token; its data comes from the routes here).",
            "meta",
            {"200": {"description": "HTML", "content": {"text/html": {"schema": _STR}}}},
        )
    },
    "/api/openapi.json": {
        "get": _op("This document.", "meta", {"200": _json("OpenAPI document", {"type": "object"})})
    },
    "/api/docs": {
        "get": _op(
            "Human-readable API documentation.",
            "meta",
            {"200": {"description": "HTML", "content": {"text/html": {"schema": _STR}}}},
        )
    },
    "/healthz": {
        "get": _op("Liveness: 200 while the process answers HTTP.", "meta", {"200": _json("Alive", _STATUS)})
    },
    "/readyz": {
        "get": _op(
            "Readiness for calls: 200 once SIP is listening, 503 while starting or draining.",
            "meta",
            {"200": _json("Ready", _STATUS), "503": _json("Starting or draining", _STATUS)},
        )
    },
    "/api/whoami": {
        "get": _op(
            "The name and role of the token sent.",
            "meta",
            {"200": _json("The token's holder", _obj({"name": _STR, "role": _ROLE}, ("name", "role")))},
        )
    },
    "/api/tokens": {
        "get": _op(
            "API tokens: names, roles and where each comes from (never the tokens).",
            "admin",
            {"200": _json("Tokens", _obj({"tokens": {"type": "array", "items": _ref("TokenInfo")}}))},
        ),
        "post": _op(
            "Issue a token; the answer is the only time it is shown (the server keeps its SHA-256).",
            "admin",
            {
                "201": _json("Issued", _obj({"name": _STR, "role": _ROLE, "token": _STR})),
                "400": _ERROR,
                "409": _json("A token with that name exists", _ref("Error")),
            },
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _obj({"name": _STR, "role": _ROLE}, ("name", "role"))}},
            },
        ),
    },
    "/api/tokens/{name}": {
        "delete": _op(
            "Revoke a token issued through the API (config and environment tokens are changed there).",
            "admin",
            {"200": _json("Revoked", _ref("TokenInfo")), "404": _ERROR, "409": _ERROR},
            parameters=[_path("name", "The token's name.")],
        )
    },
    "/metrics": {
        "get": _op(
            "Prometheus metrics (text exposition 0.0.4).",
            "meta",
            {"200": {"description": "Metrics", "content": {"text/plain": {"schema": _STR}}}},
        )
    },
}


_AUTH_ERRORS: _S = {
    "401": _json("No token, or not a valid one", _ref("Error")),
    "403": _json("The token's role is too weak for this route", _ref("Error")),
}


_AGENT_CONTROLS = {
    "pause": "Pause an agent (no offers until resumed), with an optional reason.",
    "resume": "Resume a paused agent, also one paused automatically after missed offers.",
    "wrapup-done": "End an agent's wrap-up now: available for the next caller.",
    "logout": "Log an agent out (their phone's registration refreshes do not log them back in).",
    "login": "Log an agent who logged out back in at their phone's registered contact.",
}


def _agent_control(action: str, summary: str) -> _S:
    """`POST /api/agents/{agent_id}/<action>` (ivr.web.agents)."""
    body = {"requestBody": {"required": False,
                            "content": {"application/json": {"schema": _obj({"reason": _STR}, ())}}}}
    return {"post": _op(
        f"{summary} The agent's own token (named as the agent) or a supervisor's.",
        "agents",
        {
            "200": _json("The agent now", _ref("Agent")),
            "403": _json("Another agent's token", _ref("Error")),
            "404": _json("No such agent", _ref("Error")),
            "409": _json("Not possible in the agent's state", _ref("Error")),
        },
        parameters=[_path("agent_id", "The agent's id (agents.yaml).")],
        **(body if action == "pause" else {}),
    )}


_PATHS.update({f"/api/agents/{{agent_id}}/{action}": _agent_control(action, summary)
               for action, summary in _AGENT_CONTROLS.items()})

_RECORDING_STATE = _obj({"call_id": _STR, "paused": {"type": "boolean"}, "path": _STR})
_PATHS.update({  # ivr.web.recordings (issue 20)
    "/api/recordings": {
        "get": _op(
            "The newest call recordings (stereo WAV: caller left, agent right), newest first.",
            "recordings",
            {
                "200": _json("Recordings", _obj({"recordings": {"type": "array", "items": _obj({
                    "call_id": _STR, "day": _STR, "size_bytes": _INT, "duration_s": {"type": "number"},
                }, ("call_id", "day", "size_bytes", "duration_s"))}}, ("recordings",))),
                "400": _ERROR,
            },
            parameters=[_query("limit", "1 to 200, default 50.", _INT)],
        )
    },
    "/api/calls/{call_id}/recording": {
        "get": _op(
            "A finished call's recording: 8 kHz 16-bit stereo WAV, the caller left, the agent right.",
            "recordings",
            {
                "200": {"description": "The WAV", "content": {"audio/wav": {"schema": _STR}}},
                "404": _json("No such call, no recording, or its file is gone", _ref("Error")),
            },
            parameters=[_path("call_id", "The call's id.")],
        )
    },
    "/api/calls/{call_id}/recording/pause": {
        "post": _op(
            "Pause the call's recording (card numbers): silence is written until resumed; the pause is kept.",
            "recordings",
            {"200": _json("The recording", _RECORDING_STATE),
             "404": _json("The call has no recording in progress", _ref("Error"))},
            parameters=[_path("call_id", "The call's id.")],
        )
    },
    "/api/calls/{call_id}/recording/resume": {
        "post": _op(
            "Resume a paused recording.",
            "recordings",
            {"200": _json("The recording", _RECORDING_STATE),
             "404": _json("The call has no recording in progress", _ref("Error"))},
            parameters=[_path("call_id", "The call's id.")],
        )
    },
    "/api/calls/{call_id}/supervise": {
        "post": _op(
            "A supervisor listens to, whispers to the agent of, or barges into a live call: the engine calls the "
            "supervisor's registered phone and joins it (again while joined: switch mode).",
            "recordings",
            {"202": _json("Calling the supervisor", _obj({"call_id": _STR, "mode": _STR, "supervisor": _STR})),
             "400": _ERROR,
             "404": _json("The call is not bridged to an agent here", _ref("Error")),
             "409": _json("Supervised by someone else, or the supervisor's phone is not registered",
                          _ref("Error"))},
            parameters=[_path("call_id", "The call's id.")],
            requestBody={"required": True, "content": {"application/json": {"schema": _obj(
                {"mode": {"type": "string", "enum": ["listen", "whisper", "barge"]}, "supervisor": _STR},
                ("mode", "supervisor"))}}},
        )
    },
})


def _secured(roles: Mapping[tuple[str, str], Role | None]) -> _S:
    """The paths the app serves (optional ones, like outbound, only when registered), with each operation's
    security requirement and the role it needs, from the route table."""
    paths: _S = {}
    for path, item in _PATHS.items():
        for method, op in item.items():
            if (method.upper(), path) not in roles:
                continue
            paths.setdefault(path, {})
            role = roles[(method.upper(), path)]
            if role is None:
                paths[path][method] = {**op, "security": []}
                continue
            paths[path][method] = {
                **op,
                "description": f"Needs a {role.value} token (or a stronger one).",
                "security": [{"bearer": []}],
                "responses": {**op["responses"], **_AUTH_ERRORS},
            }
    return paths


def build_spec(roles: Mapping[tuple[str, str], Role | None]) -> dict[str, Any]:
    """The document; `roles` is the app's route table ((METHOD, path) → role, None: open)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hotline IVR engine API",
            "version": __version__,
            "description": "Call records and journeys, live queues and agents, flows, reports, and actions "
            "(emergency dispatch, caller dialect) for the hotline's ops staff.",
        },
        "servers": [{"url": "/"}],
        "paths": _secured(roles),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Roles: viewer (dashboards, reports) < supervisor (+ call records, dispatch, "
                    "callers) < admin (+ tokens). IVR_API_TOKEN, or var/api-token written at first start.",
                }
            },
        },
    }
