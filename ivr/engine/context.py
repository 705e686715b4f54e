"""The caller's context on the wire: X-IVR headers to agents' phones, and User-to-User + X-IVR to another hotline.

To an agent (`agent_headers`): the call id, queue, dialect and what self-service learned (intent,
confidence, transcript, breakpoint), free text percent-encoded UTF-8, plus who transferred the call.

To another hotline (`hotline_headers`): the `TransferContext` twice — as `X-IVR-*` headers a person or
a CTI can read, and as one `User-to-User` header (RFC 7433: JSON, hex encoded,
`purpose=ivr-context`) that survives gateways that keep only standard headers. `inbound_context`
reads it back — the receiving engine calls it only for a peer the config trusts (`context_peers`) —
and `context_variables` turns it into the flow's `inbound_*` variables. Every field is bounded.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from collections.abc import Callable, Mapping

from ivr.call import TransferContext
from ivr.sip.refer import MAX_UUI_OCTETS, ReferError, UserToUser

USER_TO_USER = "User-to-User"
UUI_PURPOSE = "ivr-context"
UUI_CONTENT = "json"
MAX_FIELD_CHARS = 200
"""Summary and other free text: longer is cut (a summary, not the transcript)."""
MAX_VARIABLES = 10
MAX_NAME_CHARS = 40

X_IVR_FIELDS: Mapping[str, str] = {
    "intent": "X-IVR-Intent",
    "confidence": "X-IVR-Confidence",
    "transcript": "X-IVR-Transcript",
    "breakpoint": "X-IVR-Breakpoint",
    "transferred_by": "X-IVR-Transferred-By",
}
"""The context keys an agent's INVITE carries, each in its header."""
_HOTLINE_FIELDS = {
    "journey_id": "X-IVR-Journey-ID",
    "intent": "X-IVR-Intent",
    "customer_id": "X-IVR-Customer-ID",
    "summary": "X-IVR-Summary",
    "dialect": "X-IVR-Dialect",
}
_VAR_PREFIX = "X-IVR-Var-"


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _cut(value: object) -> str:
    return str(value)[:MAX_FIELD_CHARS]


def agent_headers(call_id: str, queue: str, dialect: str, context: Mapping[str, str],
                  extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """X-IVR headers for an agent's INVITE; `extra` adds `X-IVR-<name>` headers (`Transferred-By`...)."""
    headers = [("X-IVR-Call-ID", call_id), ("X-IVR-Queue", queue), ("X-IVR-Dialect", dialect)]
    for key, header in X_IVR_FIELDS.items():
        value = context.get(key)
        if value:
            headers.append((header, _quote(str(value))))
    for name, value in (extra or {}).items():
        if value:
            headers.append((f"X-IVR-{name}", _quote(value)))
    return headers


def _bounded(context: TransferContext) -> dict[str, object]:
    variables = {k[:MAX_NAME_CHARS]: _cut(v) for k, v in list(context.variables.items())[:MAX_VARIABLES]}
    return {"journey_id": _cut(context.journey_id), "intent": _cut(context.intent),
            "customer_id": _cut(context.customer_id), "summary": _cut(context.summary),
            "dialect": _cut(context.dialect), "variables": variables}


def hotline_headers(context: TransferContext) -> list[tuple[str, str]]:
    """User-to-User (JSON, hex) and X-IVR headers carrying `context` to another hotline."""
    data = _bounded(context)
    packed = dict(data)
    payload = json.dumps(packed, ensure_ascii=False, separators=(",", ":")).encode()
    while len(payload) > MAX_UUI_OCTETS and packed["summary"]:  # the summary gives way first
        packed["summary"] = str(packed["summary"])[: len(str(packed["summary"])) // 2]
        payload = json.dumps(packed, ensure_ascii=False, separators=(",", ":")).encode()
    headers: list[tuple[str, str]] = []
    if len(payload) <= MAX_UUI_OCTETS:
        headers.append((USER_TO_USER, UserToUser(payload, UUI_PURPOSE, UUI_CONTENT).header_value()))
    for key, header in _HOTLINE_FIELDS.items():
        if data[key]:
            headers.append((header, _quote(str(data[key]))))
    variables = data["variables"]
    assert isinstance(variables, dict)
    for name, value in variables.items():
        if value and name.replace("_", "").isalnum():
            headers.append((_VAR_PREFIX + name, _quote(value)))
    return headers


def refer_to_with_context(target: str, context: TransferContext) -> str:
    """A Refer-To value asking the referred party to send the context in its INVITE (RFC 7433 section 4.2)."""
    query = "&".join(f"{name}={_quote(value)}" for name, value in hotline_headers(context))
    return f"<{target}{'&' if '?' in target else '?'}{query}>"


def inbound_context(header: Callable[[str], str | None]) -> TransferContext | None:
    """The context an INVITE carries (User-to-User first, else X-IVR headers); None when there is none.

    Call it only for a trusted peer: anyone can write these headers."""
    uui = header(USER_TO_USER)
    if uui:
        try:
            decoded = UserToUser.parse(uui)
            if decoded.purpose == UUI_PURPOSE:
                return _from_json(json.loads(decoded.data.decode("utf-8")))
        except (ReferError, ValueError, UnicodeDecodeError):
            pass  # unreadable: fall back to the X-IVR headers
    fields = {key: urllib.parse.unquote(header(name) or "") for key, name in _HOTLINE_FIELDS.items()}
    if not fields["journey_id"]:
        return None
    return TransferContext(fields["journey_id"][:MAX_FIELD_CHARS], fields["intent"][:MAX_FIELD_CHARS],
                           fields["customer_id"][:MAX_FIELD_CHARS], fields["summary"][:MAX_FIELD_CHARS],
                           fields["dialect"][:MAX_FIELD_CHARS])


def _from_json(data: object) -> TransferContext | None:
    if not isinstance(data, dict) or not data.get("journey_id"):
        return None
    raw = data.get("variables")
    variables = {str(k)[:MAX_NAME_CHARS]: _cut(v) for k, v in list(raw.items())[:MAX_VARIABLES]} \
        if isinstance(raw, dict) else {}
    text = {key: _cut(data.get(key) or "") for key in _HOTLINE_FIELDS}
    return TransferContext(text["journey_id"], text["intent"], text["customer_id"], text["summary"], text["dialect"],
                           variables)


class ContextPeers:
    """`context_peers` from the config: is `host` a hotline whose context we read?"""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self._networks = [ipaddress.ip_network(entry.strip("[]"), strict=False) for entry in entries]

    def __call__(self, host: str) -> bool:
        if not self._networks:  # none configured (the default): no address to parse for every call
            return False
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self._networks)


def context_variables(context: TransferContext, peer: str) -> dict[str, str | bool]:
    """The flow's view of an inbound context: `inbound_context` (true) and `inbound_<field>` variables."""
    out: dict[str, str | bool] = {"inbound_context": True, "inbound_peer": peer}
    for key in _HOTLINE_FIELDS:
        out[f"inbound_{key}"] = str(getattr(context, key))
    for name, value in context.variables.items():
        if name.replace("_", "").isalnum():
            out[f"inbound_var_{name}"] = value
    return out


__all__ = [
    "USER_TO_USER",
    "ContextPeers",
    "UUI_PURPOSE",
    "X_IVR_FIELDS",
    "agent_headers",
    "context_variables",
    "hotline_headers",
    "inbound_context",
    "refer_to_with_context",
]
