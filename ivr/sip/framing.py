"""Framing SIP over a stream (TCP/TLS, RFC 3261 section 18.3): cut the bytes into messages by Content-Length."""

from __future__ import annotations

from collections.abc import Iterator

from ivr.sip.errors import SipParseError
from ivr.sip.headers import CONTENT_LENGTH
from ivr.sip.message import MAX_MESSAGE_SIZE
from ivr.sip.parser import content_length

__all__ = ["StreamFramer"]


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
            length = _streamcontent_length(bytes(buf[:end]))
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


def raw_header_values(head: bytes, names: tuple[bytes, ...]) -> Iterator[bytes]:
    """The raw values of the headers called one of `names` (lower case, compact form included) in a
    message's header section, in order: a look at one header without parsing the message."""
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in names:
            yield value


def _streamcontent_length(head: bytes) -> int:
    found: int | None = None
    for value in raw_header_values(head, (b"content-length", b"l")):
        length = content_length(value.decode("latin-1"))
        if found is not None and found != length:
            raise SipParseError(
                "bad Content-Length header: appears more than once", header=CONTENT_LENGTH
            )
        found = length
    return found or 0
