"""Building responses (RFC 3261 section 8.2.6), to a parsed request or to one that failed to parse, and the
CANCEL of an INVITE we sent (section 9.1)."""

from __future__ import annotations

from collections.abc import Iterable

from ivr.sip.errors import SipParseError
from ivr.sip.headers import CALL_ID, CONTENT_TYPE, CSEQ, FROM, MAX_FORWARDS, RECORD_ROUTE, ROUTE, TO, VIA, Headers
from ivr.sip.message import _NAME_ADDR, Request, Response

__all__ = ["REASONS", "build_cancel", "build_error_response", "build_response"]

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip


_COPIED = (VIA, FROM, TO, CALL_ID, CSEQ)
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
"""Methods whose 1xx-with-tag and 2xx responses create a dialog, and so carry Record-Route (12.1.1)."""


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to `request` (RFC 3261 section 8.2.6): Via (all), From, To, Call-ID, CSeq copied.

    `to_tag` is added to To when To has no tag yet; `reason` defaults to the standard phrase.
    A response that creates a dialog (101-299 to INVITE, SUBSCRIBE or REFER, with a To tag) also gets
    every Record-Route of the request, in order (RFC 3261 12.1.1), so the caller's ACK, BYE and
    re-INVITEs go back through the proxies that asked to stay in the path.
    """
    out = _copy_dialog_headers(request.headers, to_tag)
    if 100 < status < 300 and request.method in DIALOG_CREATING and RECORD_ROUTE in request.headers:
        if to_tag is not None or request.to.tag is not None:
            for value in request.headers.get_all(RECORD_ROUTE):
                out.add(RECORD_ROUTE, value)
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.set(CONTENT_TYPE, content_type)
    return Response(status, reason if reason is not None else REASONS.get(status, "Unknown"), out, body)


def _copy_dialog_headers(src: Headers, to_tag: str | None) -> Headers:
    """Via (all), From, To (with `to_tag` added when it has none), Call-ID, CSeq, in that order."""
    out = Headers()
    for name in _COPIED:
        for i in src._index.get(name.lower(), ()):
            value = src._items[i][1]
            if name == TO and to_tag is not None:
                value = _with_to_tag(src, value, to_tag)
            out.add(name, value)
    return out


def _with_to_tag(src: Headers, raw: str, to_tag: str) -> str:
    try:
        has_tag = src.parsed(TO, raw, _NAME_ADDR[TO]).tag is not None
    except SipParseError:
        has_tag = ";tag=" in raw.replace(" ", "").lower()
    return raw if has_tag else f"{raw};tag={to_tag}"


def build_error_response(error: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """The response a user agent sends for a request that failed to parse, or None to stay silent.

    None when RFC 3261 says to drop (responses, ACK, garbage) or no Via survived to answer to.
    The reason phrase is the error sentence, e.g. "bad CSeq header: method ... does not match ...".
    """
    if error.drop or error.method == "ACK" or not error.raw_headers:
        return None
    src = Headers(error.raw_headers)
    if VIA not in src:
        return None
    return Response(error.status_hint, error.reason, _copy_dialog_headers(src, to_tag))


def build_cancel(invite: Request) -> Request:
    """The CANCEL of `invite`: same Request-URI, Call-ID, From, To, CSeq number, top Via and Route (9.1)."""
    headers = Headers()
    headers.add(VIA, invite.headers.get_all(VIA)[0])
    headers.add(MAX_FORWARDS, "70")
    for name in (FROM, TO, CALL_ID):
        headers.add(name, invite.headers.get(name) or "")
    headers.add(CSEQ, f"{invite.cseq.seq} CANCEL")
    for route in invite.headers.get_all(ROUTE):
        headers.add(ROUTE, route)
    return Request("CANCEL", invite.uri, headers)
