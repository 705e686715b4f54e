"""SIP messages (RFC 3261 section 7): the `Request` / `Response` model, its typed header views, serializing.

Parsing bytes into these is `ivr.sip.parser`; cutting a TCP stream into messages is `ivr.sip.framing`;
building responses is `ivr.sip.builders`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import lru_cache, partial

from ivr.sip.errors import SipParseError
from ivr.sip.headers import (
    CALL_ID,
    CONTACT,
    CONTENT_TYPE,
    CSEQ,
    EXPIRES,
    FROM,
    MAGIC_COOKIE,
    MAX_FORWARDS,
    PARSE_CACHE_SIZE,
    RECORD_ROUTE,
    ROUTE,
    TO,
    VIA,
    CSeq,
    Headers,
    NameAddr,
    Via,
)
from ivr.sip.uri import SipUri, show

__all__ = [
    "CSeq",
    "Headers",
    "MAX_MESSAGE_SIZE",
    "NameAddr",
    "Request",
    "Response",
    "Via",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_uint",
]

#: Largest message we accept, datagram or stream (UDP cannot carry more anyway): above it, 513.
MAX_MESSAGE_SIZE = 65535
MAX_UINT32 = 2**32 - 1

#: NameAddr parsers that name their header in errors, shared so parse results are cached per header.
_NAME_ADDR = {name: lru_cache(PARSE_CACHE_SIZE)(partial(NameAddr.parse, header=name))
              for name in (FROM, TO, CONTACT, ROUTE, RECORD_ROUTE)}
parse_cseq = lru_cache(PARSE_CACHE_SIZE)(CSeq.parse)
_PARSE_FROM, _PARSE_TO = _NAME_ADDR[FROM], _NAME_ADDR[TO]


class _Fields:
    """Typed views of the headers every message has, parsed on access and cached."""

    __slots__ = ()
    headers: Headers

    @property
    def call_id(self) -> str:
        return self._first("call-id", CALL_ID).strip()

    @property
    def cseq(self) -> CSeq:
        return self.headers.parsed(CSEQ, self._first("cseq", CSEQ), parse_cseq)

    @property
    def via(self) -> list[Via]:
        return [self.headers.parsed(VIA, v, Via.parse) for v in self.headers.get_all(VIA)]

    @property
    def top_via(self) -> Via:
        headers = self.headers
        pos = headers._index.get("via")
        if not pos:
            raise SipParseError("missing required header: Via", header=VIA)
        first = headers._items[pos[0]][1].strip()
        if "," in first or not first:  # several Vias on one line (or an empty one): as get_all splits them
            vias = headers.get_all(VIA)
            if not vias:
                raise SipParseError("missing required header: Via", header=VIA)
            first = vias[0]
        return headers.parsed(VIA, first, Via.parse)

    @property
    def from_(self) -> NameAddr:
        return self.headers.parsed(FROM, self._first("from", FROM), _PARSE_FROM)

    @property
    def to(self) -> NameAddr:
        return self.headers.parsed(TO, self._first("to", TO), _PARSE_TO)

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
        return None if value is None else parse_uint(MAX_FORWARDS, value, 255)

    @property
    def expires(self) -> int | None:
        value = self.headers.get(EXPIRES)
        return None if value is None else parse_uint(EXPIRES, value, MAX_UINT32)

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

    def _first(self, key: str, name: str) -> str:
        """`_required(name)` for a header whose lookup key is known (Call-ID, CSeq, From, To: read several
        times per message by the transaction and dialog layers, so without the name lookup)."""
        headers = self.headers
        pos = headers._index.get(key)
        if not pos:
            raise SipParseError(f"missing required header: {name}", header=name)
        return headers._items[pos[0]][1]

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


    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0\r\n"


@dataclass(slots=True)
class Response(_Fields):
    """A SIP response; `serialize()` writes Content-Length from the body."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}\r\n"


def parse_uint(name: str, raw: str, limit: int) -> int:
    value = raw.strip()
    if not (value.isascii() and value.isdigit()):
        raise SipParseError(f"bad {name} header: {show(value, 20)} is not a number", header=name)
    if len(value) > 10 or int(value) > limit:
        raise SipParseError(f"bad {name} header: {show(value, 30)} is greater than {limit}", header=name)
    return int(value)


def new_branch() -> str:
    """A fresh RFC 3261 branch: magic cookie plus 64 random bits."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A fresh From/To tag (48 random bits)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A fresh Call-ID, unique across space and time: 96 random bits @ host."""
    return f"{secrets.token_hex(12)}@{host}"
