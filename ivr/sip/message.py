"""SIP messages (RFC 3261 sections 7, 8.1.1, 18.3, 20, 25): parse, validate, serialize.

`parse_message(datagram)` turns bytes into a `Request` or `Response` and checks what the
transaction and dialog layers rely on (Via, From, To, Call-ID, CSeq, Max-Forwards,
Content-Length, Contact...), raising `SipParseError` with a one-line reason and a status hint.
`StreamFramer` cuts a TCP byte stream into messages by Content-Length.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from ivr.sip.errors import SipParseError
from ivr.sip.headers import (
    _CANONICAL,
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
    CSeq,
    Headers,
    NameAddr,
    Via,
    split_comma,
)
from ivr.sip.uri import SipUri, UriError, show

__all__ = [
    "CSeq",
    "Headers",
    "NameAddr",
    "Request",
    "Response",
    "StreamFramer",
    "Via",
    "build_error_response",
    "build_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "MAX_MESSAGE_SIZE",
]

#: Largest message we accept, datagram or stream (UDP cannot carry more anyway): above it, 513.
MAX_MESSAGE_SIZE = 65535
_MAX_UINT32 = 2**32 - 1

_CALL_ID = re.compile(r"[!-~]+")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_MEDIA_TYPE = re.compile(r"\s*[A-Za-z0-9\-.!%*_+`'~]+\s*/\s*[A-Za-z0-9\-.!%*_+`'~]+\s*(;.*)?", re.S)
_VERSION = re.compile(r"SIP/\d+\.\d+", re.I)

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


#: NameAddr parsers that name their header in errors, shared so parse results are cached per header.
_NAME_ADDR = {name: partial(NameAddr.parse, header=name) for name in (FROM, TO, CONTACT, ROUTE, RECORD_ROUTE)}


class _Fields:
    """Typed views of the headers every message has, parsed on access and cached."""

    __slots__ = ()
    headers: Headers

    @property
    def call_id(self) -> str:
        return self._required(CALL_ID).strip()

    @property
    def cseq(self) -> CSeq:
        return self.headers.parsed(CSEQ, self._required(CSEQ), CSeq.parse)

    @property
    def via(self) -> list[Via]:
        return [self.headers.parsed(VIA, v, Via.parse) for v in self.headers.get_all(VIA)]

    @property
    def top_via(self) -> Via:
        vias = self.headers.get_all(VIA)
        if not vias:
            raise SipParseError("missing required header: Via", header=VIA)
        return self.headers.parsed(VIA, vias[0], Via.parse)

    @property
    def from_(self) -> NameAddr:
        return self._name_addr(FROM, self._required(FROM))

    @property
    def to(self) -> NameAddr:
        return self._name_addr(TO, self._required(TO))

    @property
    def contact(self) -> list[NameAddr]:
        """Contact entries (empty for none and for ``Contact: *``)."""
        return [self._name_addr(CONTACT, v) for v in self.headers.get_all(CONTACT) if v != "*"]

    @property
    def route(self) -> list[NameAddr]:
        return [self._name_addr(ROUTE, v) for v in self.headers.get_all(ROUTE)]

    @property
    def record_route(self) -> list[NameAddr]:
        return [self._name_addr(RECORD_ROUTE, v) for v in self.headers.get_all(RECORD_ROUTE)]

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get(MAX_FORWARDS)
        return None if value is None else _uint(MAX_FORWARDS, value, 255)

    @property
    def expires(self) -> int | None:
        value = self.headers.get(EXPIRES)
        return None if value is None else _uint(EXPIRES, value, _MAX_UINT32)

    @property
    def content_type(self) -> str | None:
        """The media type in lower case without parameters, e.g. "application/sdp"."""
        value = self.headers.get(CONTENT_TYPE)
        return None if value is None else value.split(";", 1)[0].strip().lower().replace(" ", "")

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing required header: {name}", header=name)
        return value

    body: bytes

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """The message on the wire; Content-Length is written from the body."""
        out = [self._start_line()]
        self.headers.serialize_into(out, len(self.body))
        out.append("\r\n")
        return "".join(out).encode() + self.body

    def _name_addr(self, name: str, raw: str) -> NameAddr:
        return self.headers.parsed(name, raw, _NAME_ADDR.get(name) or partial(NameAddr.parse, header=name))


@dataclass(slots=True)
class Request(_Fields):
    """A SIP request; `serialize()` writes Content-Length from the body."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Request:
        msg = parse_message(data)
        if not isinstance(msg, Request):
            raise SipParseError("expected a request, got a response", drop=True)
        return msg

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0\r\n"


@dataclass(slots=True)
class Response(_Fields):
    """A SIP response; `serialize()` writes Content-Length from the body."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Response:
        msg = parse_message(data)
        if not isinstance(msg, Response):
            raise SipParseError("expected a response, got a request")
        return msg

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}\r\n"


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
    canonical = _CANONICAL
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
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
        known = canonical.get(raw_name.lower())
        if known is not None:
            name = known
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
        uri = SipUri.parse(uri_text)
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
    if headers.count(CONTENT_LENGTH) > 1:
        raise SipParseError("bad Content-Length header: appears more than once", header=CONTENT_LENGTH)
    raw = headers.get(CONTENT_LENGTH)
    available = len(data) - body_start
    if raw is None:
        return data[body_start:]
    length = _content_length(raw)
    if length > available:
        raise SipParseError(f"Content-Length {length} exceeds body length {available}", header=CONTENT_LENGTH)
    return data[body_start : body_start + length]


def _content_length(raw: str) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise SipParseError(
            f"bad Content-Length header: {show(value, 20)} is not a non-negative integer",
            header=CONTENT_LENGTH,
        )
    return int(value)


def _uint(name: str, raw: str, limit: int) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit()):
        raise SipParseError(f"bad {name} header: {show(value, 20)} is not a number", header=name)
    if len(value) > 10 or int(value) > limit:
        raise SipParseError(f"bad {name} header: {show(value, 30)} is greater than {limit}", header=name)
    return int(value)


_REQUIRED = (VIA, FROM, TO, CALL_ID, CSEQ)
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
    if not all(name.lower() in index for name in _REQUIRED):
        missing = [name for name in _REQUIRED if name.lower() not in index]
        plural = "s" if len(missing) > 1 else ""
        raise SipParseError(f"missing required header{plural}: {', '.join(missing)}", header=missing[0])
    for key, name in _SINGLE_KEYS:
        pos = index.get(key)
        if pos is not None and len(pos) > 1:
            raise SipParseError(f"bad {name} header: appears {len(pos)} times", header=name)
    vias = [parsed(VIA, raw, Via.parse) for raw in _values(headers, "via", VIA)]
    if vias[0].branch == MAGIC_COOKIE:
        raise SipParseError("bad Via header: branch is the magic cookie with no identifier", header=VIA)
    parsed(FROM, items[index["from"][0]][1], _NAME_ADDR[FROM])
    parsed(TO, items[index["to"][0]][1], _NAME_ADDR[TO])
    call_id = items[index["call-id"][0]][1]
    if not _CALL_ID.fullmatch(call_id):
        raise SipParseError(f"bad Call-ID header: {show(call_id, 40)}", header=CALL_ID)
    cseq = parsed(CSEQ, items[index["cseq"][0]][1], CSeq.parse)
    if isinstance(msg, Request) and cseq.method != msg.method:
        raise SipParseError(
            f"bad CSeq header: method '{cseq.method}' does not match request method '{msg.method}'",
            header=CSEQ,
        )
    pos = index.get("max-forwards")
    if pos is not None:
        _uint(MAX_FORWARDS, items[pos[0]][1], 255)
    pos = index.get("expires")
    if pos is not None:
        _uint(EXPIRES, items[pos[0]][1], _MAX_UINT32)
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
                _uint(CONTACT, expires, _MAX_UINT32)


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
        _uint(RETRY_AFTER, value, _MAX_UINT32)
    if "warning" in index:
        for warning in headers.get_all(WARNING):
            code = warning.split(None, 1)[0] if warning.split() else ""
            if len(code) != 3 or not code.isdigit():
                raise SipParseError(
                    f"bad Warning header: warn-code {show(code, 20)} is not 3 digits", header=WARNING
                )


class StreamFramer:
    """Cuts a stream (TCP/TLS) into whole messages using Content-Length (RFC 3261 section 18.3).

    CRLF keep-alives between messages are skipped. A message without Content-Length is taken to
    have an empty body. Raises SipParseError (513 for oversize, 400 for a bad Content-Length):
    the connection should then be closed.
    """

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages now complete, in order."""
        buf = self._buffer
        buf += data
        out: list[bytes] = []
        while True:
            skip = 0
            while buf[skip : skip + 2] == b"\r\n":
                skip += 2
            if skip:
                del buf[:skip]
            if not buf:
                return out
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._max_size:
                    raise SipParseError(f"header section exceeds {self._max_size} bytes", status_hint=513)
                return out
            length = _stream_content_length(bytes(buf[:end]))
            total = end + 4 + length
            if total > self._max_size:
                raise SipParseError(
                    f"message of {total} bytes exceeds the limit of {self._max_size}", status_hint=513
                )
            if len(buf) < total:
                return out
            out.append(bytes(buf[:total]))
            del buf[:total]

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)


def _stream_content_length(head: bytes) -> int:
    found: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            length = _content_length(value.decode("latin-1"))
            if found is not None and found != length:
                raise SipParseError(
                    "bad Content-Length header: appears more than once", header=CONTENT_LENGTH
                )
            found = length
    return found or 0


_COPIED = (VIA, FROM, TO, CALL_ID, CSEQ)


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
    """
    out = _copy_dialog_headers(request.headers, to_tag)
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


def new_branch() -> str:
    """A fresh RFC 3261 branch: magic cookie plus 64 random bits."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A fresh From/To tag (48 random bits)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A fresh Call-ID, unique across space and time: 96 random bits @ host."""
    return f"{secrets.token_hex(12)}@{host}"
