"""Parsing SIP messages (RFC 3261 sections 7, 8.1.1, 20, 25): bytes to `Request` / `Response`, validated.

`parse_message(datagram)` checks what the transaction and dialog layers rely on (Via, From, To,
Call-ID, CSeq, Max-Forwards, Content-Length, Contact...), raising `SipParseError` with a one-line
reason and a status hint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ivr.sip.errors import SipParseError
from ivr.sip.headers import (
    _CANONICAL,
    _EXACT,
    _TOKEN,
    CALL_ID,
    CONTACT,
    CONTENT_LENGTH,
    CONTENT_TYPE,
    CSEQ,
    DATE,
    EXPIRES,
    FROM,
    MAGIC_COOKIE,
    MAX_FORWARDS,
    RECORD_ROUTE,
    RETRY_AFTER,
    ROUTE,
    SINGLE_VALUE,
    TO,
    VIA,
    WARNING,
    Headers,
    Via,
    parse_uri,
    split_comma,
)
from ivr.sip.message import (
    _NAME_ADDR,
    MAX_MESSAGE_SIZE,
    MAX_UINT32,
    Request,
    Response,
    parse_cseq,
    parse_uint,
)
from ivr.sip.uri import SipUri, UriError, show

__all__ = ["parse_message", "content_length"]

_CALL_ID = re.compile(r"[!-~]+")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_MEDIA_TYPE = re.compile(r"\s*[A-Za-z0-9\-.!%*_+`'~]+\s*/\s*[A-Za-z0-9\-.!%*_+`'~]+\s*(;.*)?", re.S)
_VERSION = re.compile(r"SIP/\d+\.\d+", re.I)


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Request | Response:
    """Parse one whole message (a datagram, or a frame from `StreamFramer`).

    Raises SipParseError with `status_hint` (400, 416, 505, 513), the header at fault and `drop`
    set when RFC 3261 says not to answer (responses, unrecognisable start lines).
    """
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds the limit of {max_size}", status_hint=513)
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    body_start = end + 4
    if end < 0 and data.endswith(b"\r\n") and len(data) > start:
        end = body_start = len(data) - 2  # no empty line: a datagram that ends after its headers
    if end < 0:
        if start == len(data):
            raise SipParseError("empty message", drop=True)
        raise SipParseError(
            "message has no empty line after the headers", drop=_looks_like_response(data, start)
        )
    try:
        head = data[start:end].decode()
    except UnicodeDecodeError:
        raise SipParseError(
            "message headers are not valid UTF-8", drop=_looks_like_response(data, start)
        ) from None
    lines = head.split("\r\n")
    first = lines[0]
    is_response = first.startswith("SIP/")
    method: str | None = None
    if not is_response:
        sp = first.find(" ")
        method = first[:sp] if sp > 0 else None
    headers: Headers | None = None
    try:
        headers = _split_headers(head, lines)
        msg: Request | Response
        if is_response:
            msg = Response(*_parse_status_line(first), headers, b"")
        else:
            method, uri = _parse_request_line(first)
            msg = Request(method, uri, headers, b"")
        msg.body = _frame_body(headers, data, body_start)
        _validate(msg)
        return msg
    except SipParseError as exc:
        exc.drop = exc.drop or is_response or (method is None and not exc.status_hint == 513)
        exc.method = method
        exc.raw_headers = tuple(headers.items()) if headers is not None else ()
        raise


def _looks_like_response(data: bytes, start: int) -> bool:
    return data.startswith(b"SIP/", start)


def _split_headers(head: str, lines: list[str]) -> Headers:
    items: list[tuple[str, str]] = []
    index: dict[str, list[int]] = {}
    if head.count("\r") != len(lines) - 1 or head.count("\n") != len(lines) - 1:
        raise SipParseError("message has a bare CR or LF in its header section")
    exact = _EXACT
    folded = "\n " in head or "\n\t" in head  # continuation lines are rare: test each line only then
    for line in lines[1:]:
        if folded and line[:1] in (" ", "\t"):
            if not items:
                raise SipParseError("message has a continuation line before any header")
            prev_name, prev_value = items[-1]
            extra = line.strip()
            items[-1] = (prev_name, f"{prev_value} {extra}" if prev_value else extra)
            continue
        raw_name, colon, value = line.partition(":")
        if not colon or not raw_name:
            raise SipParseError(f"bad header line {show(line, 40)}: no ':'")
        if raw_name[-1] in " \t":
            raw_name = raw_name.rstrip(" \t")
        known = exact.get(raw_name)
        if known is not None:
            name, key = known
        else:
            canon = _CANONICAL.get(raw_name.lower())
            if canon is not None:
                name = canon
            elif _TOKEN.fullmatch(raw_name):
                name = raw_name
            else:
                raise SipParseError(f"bad header name {show(raw_name, 40)}")
            key = name.lower()
        pos = index.get(key)
        if pos is None:
            index[key] = [len(items)]
        else:
            pos.append(len(items))
        items.append((name, value.strip()))
    return Headers._trusted(items, index)


def _parse_request_line(line: str) -> tuple[str, SipUri]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        if line != line.rstrip():
            why = "trailing whitespace"
        elif "" in parts or "\t" in line:
            why = "elements must be separated by single spaces"
        elif len(parts) > 3:
            why = "Request-URI contains whitespace"
        else:
            why = "expected 'METHOD Request-URI SIP/2.0'"
        raise SipParseError(f"bad request line: {why}")
    method, uri_text, version = parts
    if not _TOKEN.fullmatch(method):
        raise SipParseError(f"bad request line: bad method {show(method, 30)}")
    _check_version(version, "request line")
    try:
        uri = parse_uri(uri_text)
    except UriError as exc:
        raise SipParseError(f"bad Request-URI {show(uri_text)}: {exc.why}") from None
    if not (uri.is_sip or uri.scheme == "tel"):
        raise SipParseError(f"unsupported URI scheme '{uri.scheme}' in Request-URI", status_hint=416)
    if uri.headers:
        raise SipParseError("bad Request-URI: headers are not allowed in a Request-URI")
    return method, uri


def _check_version(version: str, where: str) -> None:
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION.fullmatch(version):
            raise SipParseError(f"unsupported SIP version {show(version, 20)}", status_hint=505)
        raise SipParseError(f"bad {where}: bad SIP version {show(version, 20)}")


def _parse_status_line(line: str) -> tuple[int, str]:
    parts = line.split(" ", 2)
    if len(parts) < 2:
        raise SipParseError("bad status line: expected 'SIP/2.0 code reason'")
    _check_version(parts[0], "status line")
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
        raise SipParseError(f"bad status line: status code {show(code, 20)} is not in 100-699")
    return int(code), parts[2] if len(parts) == 3 else ""


def _frame_body(headers: Headers, data: bytes, body_start: int) -> bytes:
    pos = headers._index.get("content-length")
    if pos is None:
        return data[body_start:]
    if len(pos) > 1:
        raise SipParseError("bad Content-Length header: appears more than once", header=CONTENT_LENGTH)
    available = len(data) - body_start
    length = content_length(headers._items[pos[0]][1])
    if length > available:
        raise SipParseError(f"Content-Length {length} exceeds body length {available}", header=CONTENT_LENGTH)
    return data[body_start : body_start + length]


def content_length(raw: str) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise SipParseError(
            f"bad Content-Length header: {show(value, 20)} is not a non-negative integer",
            header=CONTENT_LENGTH,
        )
    return int(value)


_REQUIRED = (VIA, FROM, TO, CALL_ID, CSEQ)
_REQUIRED_KEYS = tuple(name.lower() for name in _REQUIRED)
_SINGLE_KEYS = tuple((name.lower(), name) for name in SINGLE_VALUE)
_LISTS = (("contact", CONTACT), ("route", ROUTE), ("record-route", RECORD_ROUTE))


def _values(headers: Headers, key: str, name: str) -> Iterator[str]:
    """Every comma-separated value of a list header in order, refusing empty ones (``Via: a,,b``)."""
    items = headers._items
    for i in headers._index[key]:
        value = items[i][1]
        for piece in split_comma(value) if "," in value else (value,):
            if not piece:
                raise SipParseError(f"bad {name} header: empty value", header=name)
            yield piece


def _validate(msg: Request | Response) -> None:
    """Check what the layers above rely on; each structured value is parsed once and cached."""
    headers = msg.headers
    index = headers._index
    items = headers._items
    parsed = headers.parsed
    for key in _REQUIRED_KEYS:
        if key not in index:
            missing = [name for name in _REQUIRED if name.lower() not in index]
            plural = "s" if len(missing) > 1 else ""
            raise SipParseError(f"missing required header{plural}: {', '.join(missing)}", header=missing[0])
    if len(index) != len(items):  # some name appears on more than one line
        for key, name in _SINGLE_KEYS:
            pos = index.get(key)
            if pos is not None and len(pos) > 1:
                raise SipParseError(f"bad {name} header: appears {len(pos)} times", header=name)
    via_lines = index["via"]
    top = items[via_lines[0]][1]
    if len(via_lines) == 1 and "," not in top and top:  # one Via (a UAC's request, a response to us)
        top_via = parsed(VIA, top, Via.parse)
    else:
        top_via = [parsed(VIA, raw, Via.parse) for raw in _values(headers, "via", VIA)][0]
    if top_via.branch == MAGIC_COOKIE:
        raise SipParseError("bad Via header: branch is the magic cookie with no identifier", header=VIA)
    parsed(FROM, items[index["from"][0]][1], _NAME_ADDR[FROM])
    parsed(TO, items[index["to"][0]][1], _NAME_ADDR[TO])
    call_id = items[index["call-id"][0]][1]
    if not _CALL_ID.fullmatch(call_id):
        raise SipParseError(f"bad Call-ID header: {show(call_id, 40)}", header=CALL_ID)
    cseq = parsed(CSEQ, items[index["cseq"][0]][1], parse_cseq)
    if isinstance(msg, Request) and cseq.method != msg.method:
        raise SipParseError(
            f"bad CSeq header: method '{cseq.method}' does not match request method '{msg.method}'",
            header=CSEQ,
        )
    pos = index.get("max-forwards")
    if pos is not None:
        parse_uint(MAX_FORWARDS, items[pos[0]][1], 255)
    pos = index.get("expires")
    if pos is not None:
        parse_uint(EXPIRES, items[pos[0]][1], MAX_UINT32)
    for key, name in _LISTS:
        if key in index:
            _validate_addresses(headers, key, name)
    pos = index.get("content-type")
    if pos is not None and not _MEDIA_TYPE.fullmatch(items[pos[0]][1]):
        raise SipParseError(f"bad Content-Type header: {show(items[pos[0]][1])}", header=CONTENT_TYPE)
    _validate_rare(headers)


def _validate_addresses(headers: Headers, key: str, name: str) -> None:
    values = list(_values(headers, key, name))
    if name == CONTACT and "*" in values:
        if len(values) > 1:
            raise SipParseError("bad Contact header: '*' mixed with addresses", header=CONTACT)
        return
    parser = _NAME_ADDR[name]
    for raw in values:
        addr = headers.parsed(name, raw, parser)
        if name == CONTACT:
            expires = addr.param("expires")
            if expires is not None:
                parse_uint(CONTACT, expires, MAX_UINT32)


def _validate_rare(headers: Headers) -> None:
    index = headers._index
    if "date" in index:
        date = headers.get(DATE) or ""
        if not _DATE.fullmatch(date):
            raise SipParseError(
                f"bad Date header: {show(date, 40)} is not an RFC 1123 date in GMT", header=DATE
            )
    if "retry-after" in index:
        value = (headers.get(RETRY_AFTER) or "").split(";", 1)[0].split("(", 1)[0]
        parse_uint(RETRY_AFTER, value, MAX_UINT32)
    if "warning" in index:
        for warning in headers.get_all(WARNING):
            code = warning.split(None, 1)[0] if warning.split() else ""
            if len(code) != 3 or not code.isdigit():
                raise SipParseError(
                    f"bad Warning header: warn-code {show(code, 20)} is not 3 digits", header=WARNING
                )
