"""Header names: canonical spellings, the RFC 3261 compact forms, and which headers may carry
several comma-separated values.

Every module refers to headers through these constants, never through string literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TypeVar, cast

from ivr.sip.errors import SipParseError
from ivr.sip.uri import Params, SipUri, find_param, format_params, set_param, show

VIA = "Via"
FROM = "From"
TO = "To"
CALL_ID = "Call-ID"
CSEQ = "CSeq"
CONTACT = "Contact"
MAX_FORWARDS = "Max-Forwards"
CONTENT_LENGTH = "Content-Length"
CONTENT_TYPE = "Content-Type"
CONTENT_ENCODING = "Content-Encoding"
CONTENT_DISPOSITION = "Content-Disposition"
ROUTE = "Route"
RECORD_ROUTE = "Record-Route"
AUTHORIZATION = "Authorization"
WWW_AUTHENTICATE = "WWW-Authenticate"
PROXY_AUTHORIZATION = "Proxy-Authorization"
PROXY_AUTHENTICATE = "Proxy-Authenticate"
AUTHENTICATION_INFO = "Authentication-Info"
EXPIRES = "Expires"
MIN_EXPIRES = "Min-Expires"
ALLOW = "Allow"
ALLOW_EVENTS = "Allow-Events"
SUPPORTED = "Supported"
REQUIRE = "Require"
PROXY_REQUIRE = "Proxy-Require"
UNSUPPORTED = "Unsupported"
USER_AGENT = "User-Agent"
SERVER = "Server"
RETRY_AFTER = "Retry-After"
REFER_TO = "Refer-To"
REFERRED_BY = "Referred-By"
EVENT = "Event"
SUBSCRIPTION_STATE = "Subscription-State"
ACCEPT = "Accept"
ACCEPT_ENCODING = "Accept-Encoding"
ACCEPT_LANGUAGE = "Accept-Language"
ACCEPT_CONTACT = "Accept-Contact"
REJECT_CONTACT = "Reject-Contact"
REQUEST_DISPOSITION = "Request-Disposition"
REASON = "Reason"
DATE = "Date"
SUBJECT = "Subject"
WARNING = "Warning"
TIMESTAMP = "Timestamp"
ORGANIZATION = "Organization"
PRIORITY = "Priority"
CALL_INFO = "Call-Info"
ALERT_INFO = "Alert-Info"
ERROR_INFO = "Error-Info"
IN_REPLY_TO = "In-Reply-To"
MIME_VERSION = "MIME-Version"
PATH = "Path"
SERVICE_ROUTE = "Service-Route"
SESSION_EXPIRES = "Session-Expires"
MIN_SE = "Min-SE"
P_ASSERTED_IDENTITY = "P-Asserted-Identity"
IDENTITY = "Identity"
IDENTITY_INFO = "Identity-Info"
RSEQ = "RSeq"
RACK = "RAck"
REPLACES = "Replaces"

#: RFC 3261 section 7.3.3 and later RFCs: one-letter forms.
COMPACT_FORMS: dict[str, str] = {
    "a": ACCEPT_CONTACT,
    "b": REFERRED_BY,
    "c": CONTENT_TYPE,
    "d": REQUEST_DISPOSITION,
    "e": CONTENT_ENCODING,
    "f": FROM,
    "i": CALL_ID,
    "j": REJECT_CONTACT,
    "k": SUPPORTED,
    "l": CONTENT_LENGTH,
    "m": CONTACT,
    "n": IDENTITY_INFO,
    "o": EVENT,
    "r": REFER_TO,
    "s": SUBJECT,
    "t": TO,
    "u": ALLOW_EVENTS,
    "v": VIA,
    "x": SESSION_EXPIRES,
    "y": IDENTITY,
}

_KNOWN = [v for k, v in globals().items() if k.isupper() and isinstance(v, str)]

#: lower-case spelling (or compact letter) -> canonical name
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)

#: Spellings met on the hot path, exactly as written (canonical, lower-case, compact) -> (canonical, key):
#: one dictionary lookup instead of lower-casing each time; any other spelling takes the general path.
_EXACT: dict[str, tuple[str, str]] = {}
for _spelling, _canon in _CANONICAL.items():
    for _form in (_spelling, _canon, _spelling.upper()):
        _EXACT[_form] = (_canon, _canon.lower())

#: Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1), split by get_all().
MULTI_VALUE: frozenset[str] = frozenset(
    {
        VIA,
        ROUTE,
        RECORD_ROUTE,
        CONTACT,
        ALLOW,
        ALLOW_EVENTS,
        SUPPORTED,
        REQUIRE,
        PROXY_REQUIRE,
        UNSUPPORTED,
        ACCEPT,
        ACCEPT_ENCODING,
        ACCEPT_LANGUAGE,
        CONTENT_ENCODING,
        PATH,
        SERVICE_ROUTE,
        WARNING,
        CALL_INFO,
        ALERT_INFO,
        ERROR_INFO,
        IN_REPLY_TO,
        REASON,
        P_ASSERTED_IDENTITY,
        ACCEPT_CONTACT,
        REJECT_CONTACT,
    }
)

#: Headers that may appear at most once in a message.
SINGLE_VALUE: tuple[str, ...] = (FROM, TO, CALL_ID, CSEQ, MAX_FORWARDS, CONTENT_LENGTH, CONTENT_TYPE, EXPIRES)


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name: "v" -> "Via", "call-id" -> "Call-ID".

    Names we do not know are returned as given (comparison stays case-insensitive).
    """
    known = _EXACT.get(name)
    return known[0] if known is not None else _CANONICAL.get(name.lower(), name)


def header_key(name: str) -> str:
    """The key two spellings of one header share: lower-case canonical name."""
    known = _EXACT.get(name)
    if known is not None:
        return known[1]
    lower = name.lower()
    canon = _CANONICAL.get(lower)
    return canon.lower() if canon is not None else lower


def _name_and_key(name: str) -> tuple[str, str]:
    known = _EXACT.get(name)
    if known is not None:
        return known
    canon = canonical_name(name)
    return canon, canon.lower()


def split_comma(value: str) -> list[str]:
    """Split a header value at commas outside quoted strings and angle brackets; pieces stripped.

    Empty pieces are kept (the caller decides whether they are an error).
    """
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [p.strip() for p in value.split(",")]
    pieces: list[str] = []
    start = 0
    quoted = angle = escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            pieces.append(value[start:i].strip())
            start = i + 1
    pieces.append(value[start:].strip())
    return pieces


T = TypeVar("T")


class Headers:
    """An ordered, case-insensitive multimap of header fields, values kept as raw strings.

    Names are stored canonically ("v" becomes "Via"); structured values (Via, NameAddr, CSeq)
    are parsed on access by the message's properties and cached by raw text, so a header that
    is never looked at is never parsed.
    """

    __slots__ = ("_items", "_index", "_cache")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, str], object] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]], index: dict[str, list[int]]) -> Headers:
        """Build from fields already canonical and indexed (the parser's fast path)."""
        self = cls()  # not cls.__new__(cls), which mypyc cannot compile for a native class
        self._items = items
        self._index = index
        self._cache = {}
        return self

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (whole field, not comma-split), or `default`."""
        pos = self._index.get(header_key(name))
        return self._items[pos[0]][1] if pos else default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header; list-valued headers (Via, Contact, Route...) are split at commas."""
        canon, key = _name_and_key(name)
        pos = self._index.get(key)
        if not pos:
            return []
        values = [self._items[i][1] for i in pos]
        if canon not in MULTI_VALUE:
            return values
        out: list[str] = []
        for value in values:
            if canon == CONTACT and value.strip() == "*":
                out.append("*")
            else:
                out.extend(p for p in split_comma(value) if p)
        return out

    def count(self, name: str) -> int:
        """How many header fields (lines) of this name there are."""
        return len(self._index.get(header_key(name), ()))

    def add(self, name: str, value: str) -> None:
        """Append a header field."""
        canon, key = _name_and_key(name)
        pos = self._index.get(key)
        if pos is None:
            self._index[key] = [len(self._items)]
        else:
            pos.append(len(self._items))
        self._items.append((canon, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one (at the first one's place, else appended)."""
        key = header_key(name)
        pos = self._index.get(key)
        if not pos:
            self.add(name, value)
            return
        first = pos[0]
        self._items[first] = (self._items[first][0], value)
        if len(pos) > 1:
            drop = set(pos[1:])
            self._rebuild([item for i, item in enumerate(self._items) if i not in drop])

    def remove(self, name: str) -> None:
        """Remove every field of this name (no error when absent)."""
        key = header_key(name)
        if key in self._index:
            self._rebuild([item for item in self._items if item[0].lower() != key])

    def items(self) -> list[tuple[str, str]]:
        """Every field in order, as (canonical name, raw value)."""
        return list(self._items)

    def copy(self) -> Headers:
        return Headers._trusted(list(self._items), {k: list(v) for k, v in self._index.items()})

    def parsed(self, name: str, raw: str, parser: Callable[[str], T]) -> T:
        """`parser(raw)`, cached per (name, raw text): values are immutable, so edits cannot stale it."""
        key = (name, raw)
        hit = self._cache.get(key)
        if hit is None:
            hit = parser(raw)
            self._cache[key] = hit
        return cast(T, hit)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._index

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def serialize_into(self, out: list[str], content_length: int | None) -> None:
        """Append "Name: value\\r\\n" lines; Content-Length is written as `content_length` (once)."""
        cl_key = "content-length"
        wrote_cl = content_length is None
        for name, value in self._items:
            if name == CONTENT_LENGTH or (len(name) == 14 and name.lower() == cl_key):
                if wrote_cl:
                    continue
                value = str(content_length)
                wrote_cl = True
            out.append(f"{name}: {value}\r\n")
        if not wrote_cl:
            out.append(f"{CONTENT_LENGTH}: {content_length}\r\n")

    def _rebuild(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._index = {}
        for i, (name, _) in enumerate(items):
            self._index.setdefault(name.lower(), []).append(i)


# --- structured header values: Via, NameAddr (From/To/Contact/Route...), CSeq ---------------

MAGIC_COOKIE = "z9hG4bK"
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_GEN_VALUE = re.compile(r"""[A-Za-z0-9\-.!%*_+`'~:\[\]]+|"(?:[^"\\]|\\.)*\"""", re.S)
_PARAMS_FAST = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]]+)?)*")
_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+) ([A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?(;[^\s,\"]*)?"
)
_VIA_SLOW = re.compile(
    r"\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([0-9.]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+"
    r"([A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:.]+\])(?:\s*:\s*(\d{1,5}))?\s*(;.*)?",
    re.S,
)


def parse_header_params(text: str, header: str) -> Params:
    """`;name=value;flag` after a header's main value, LWS allowed around ';' and '='."""
    if not text:
        return ()
    if _PARAMS_FAST.fullmatch(text):
        out: list[tuple[str, str | None]] = []
        for item in text.split(";")[1:]:
            name, eq, value = item.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)
    text = text.strip()
    if not text.startswith(";"):
        raise SipParseError(f"bad {header} header: unexpected text {show(text, 30)}", header=header)
    out = []
    for item in _split_outside_quotes(text[1:], ";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        value = value.strip()
        if not name:
            raise SipParseError(f"bad {header} header: empty parameter", header=header)
        if not _TOKEN.fullmatch(name):
            raise SipParseError(f"bad {header} header: bad parameter name {show(name, 30)}", header=header)
        if eq and not _GEN_VALUE.fullmatch(value):
            raise SipParseError(
                f"bad {header} header: bad value {show(value, 30)} for parameter '{name}'", header=header
            )
        out.append((name, value if eq else None))
    return tuple(out)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    pieces: list[str] = []
    start = 0
    quoted = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            pieces.append(text[start:i])
            start = i + 1
    if quoted:
        raise SipParseError("unterminated quoted string")
    pieces.append(text[start:])
    return pieces


@dataclass(slots=True, frozen=True)
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=z9hG4bK...``."""

    transport: str
    host: str
    port: int | None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA_FAST.fullmatch(text)
        if m is not None:
            transport, host, port_text, params_text = m.groups()
            params = parse_header_params(params_text, VIA) if params_text else ()
        else:
            s = _VIA_SLOW.fullmatch(text)
            if s is None:
                raise SipParseError(f"bad Via header: {show(text.strip())} is not a via-parm", header=VIA)
            protocol, version, transport, host, port_text, params_text = s.groups()
            if protocol.upper() != "SIP" or version != "2.0":
                raise SipParseError(
                    f"bad Via header: unsupported protocol '{protocol}/{version}'",
                    header=VIA,
                    status_hint=505,
                )
            params = parse_header_params(params_text or "", VIA)
        port = int(port_text) if port_text else None
        if port is not None and port > 65535:
            raise SipParseError(f"bad Via header: port {port} is out of range", header=VIA)
        for name, value in params:
            lname = name.lower()
            if value is None and lname in ("branch", "received", "maddr", "ttl"):
                raise SipParseError(f"bad Via header: {lname} parameter has no value", header=VIA)
        return cls(transport.upper(), host, port, params)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return find_param(self.params, "received")

    @property
    def rport(self) -> str | None:
        """ "" when the rport flag is present without a value (RFC 3581), None when absent."""
        return find_param(self.params, "rport")

    @property
    def maddr(self) -> str | None:
        return find_param(self.params, "maddr")

    @property
    def is_rfc3261(self) -> bool:
        """True when the branch carries the RFC 3261 magic cookie (and something after it)."""
        branch = self.branch
        return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))


def _unquote(text: str) -> tuple[str, str]:
    """Split a leading quoted-string off `text` (which starts with '"'): (unescaped body, rest)."""
    end = text.find('"', 1)
    if end > 0 and "\\" not in text[1:end]:
        return text[1:end], text[end + 1 :]
    i = 1
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted string")


@dataclass(slots=True, frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` as in From, To, Contact, Route, Record-Route, Refer-To."""

    display: str | None
    uri: SipUri
    params: Params = ()

    @classmethod
    def parse(cls, text: str, header: str = "name-addr") -> NameAddr:
        s = text.strip()
        display: str | None = None
        if s.startswith('"'):
            try:
                display, rest = _unquote(s)
            except ValueError:
                raise SipParseError(
                    f"bad {header} header: unterminated quoted string", header=header
                ) from None
            rest = rest.lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"bad {header} header: quoted display name without <URI>", header=header)
        else:
            lt = s.find("<")
            if lt < 0:
                return cls._parse_addr_spec(s, header)
            words = s[:lt].split()
            for word in words:
                if not _TOKEN.fullmatch(word):
                    raise SipParseError(
                        f"bad {header} header: display name {show(s[:lt].strip(), 40)} must be quoted",
                        header=header,
                    )
            display = " ".join(words) if words else None
            rest = s[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError(f"bad {header} header: missing '>'", header=header)
        uri_text = rest[1:gt]
        if uri_text != uri_text.strip():
            raise SipParseError(f"bad {header} header: whitespace inside <URI>", header=header)
        return cls(display, _uri(uri_text, header), parse_header_params(rest[gt + 1 :], header))

    @classmethod
    def _parse_addr_spec(cls, s: str, header: str) -> NameAddr:
        semi = s.find(";")
        uri_text = (s if semi < 0 else s[:semi]).rstrip()
        if "?" in uri_text or "," in uri_text:
            raise SipParseError(
                f"bad {header} header: URI with '?' or ',' must be enclosed in <>", header=header
            )
        params = parse_header_params(s[semi:], header) if semi >= 0 else ()
        return cls(None, _uri(uri_text, header), params)

    def __str__(self) -> str:
        params = format_params(self.params)
        if self.display is None:
            return f"<{self.uri}>{params}"
        name = self.display.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" <{self.uri}>{params}'

    @property
    def tag(self) -> str | None:
        return find_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=set_param(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return replace(self, params=set_param(self.params, name, value))


PARSE_CACHE_SIZE = 512
"""Parse results kept across messages, per parser: a peer repeats its From, To, Contact and CSeq in every
message of a call, and a trunk (or SIPp) the same URIs in every call. The values are frozen, so messages
may share them; errors are not kept. Least recently used dropped beyond this many, few enough that the
kept objects cost the garbage collector little."""
parse_uri = lru_cache(PARSE_CACHE_SIZE)(SipUri.parse)
"""`SipUri.parse`, cached: a From whose tag is new in every call still names the same URI (issue 22)."""


def _uri(text: str, header: str) -> SipUri:
    try:
        return parse_uri(text)
    except SipParseError as exc:
        raise SipParseError(f"bad {header} header: {exc}", header=header) from None


@dataclass(slots=True, frozen=True)
class CSeq:
    """``CSeq: 4711 INVITE``."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2:
            raise SipParseError(f"bad CSeq header: {show(text.strip())} is not 'number METHOD'", header=CSEQ)
        number, method = parts
        if not (number.isascii() and number.isdigit()):
            raise SipParseError(
                f"bad CSeq header: sequence number {show(number, 20)} is not a number", header=CSEQ
            )
        if len(number) > 10 or int(number) >= 2**31:
            raise SipParseError(
                f"bad CSeq header: sequence number {show(number, 30)} is too large", header=CSEQ
            )
        if not _TOKEN.fullmatch(method):
            raise SipParseError(f"bad CSeq header: bad method {show(method, 30)}", header=CSEQ)
        return cls(int(number), method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
