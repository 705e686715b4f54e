"""RTP packets (RFC 3550 section 5.1): parse and serialize, pure.

`RtpPacket` is the general wire object (CSRCs, header extension, padding). The send path does not
build one per packet: `HeaderWriter` packs the 12-byte header with one precompiled `Struct`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ivr.rtp.errors import RtpParseError

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")


@dataclass(slots=True, frozen=True)
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    """The 16-bit profile word of a header extension, None when there is no extension."""
    extension: bytes = b""
    padding_size: int = 0
    """Bytes of padding after the payload (the last of them holds this count)."""

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram; `RtpParseError` says what is wrong with it."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpParseError("RTP packet length is less than 12 bytes")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError("RTP packet has invalid version")
        offset = RTP_HEADER_SIZE
        csrc_count = first & 0x0F
        if len(data) < offset + 4 * csrc_count:
            raise RtpParseError("RTP packet has truncated CSRC list")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset += 4 * csrc_count
        profile: int | None = None
        extension = b""
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpParseError("RTP packet has truncated extension header")
            profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise RtpParseError("RTP packet has truncated extension")
            extension = bytes(data[offset : offset + 4 * words])
            offset += 4 * words
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise RtpParseError("RTP packet has invalid padding length")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension_profile=profile,
            extension=extension,
            padding_size=padding,
        )

    def serialize(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        parts += [struct.pack("!I", c) for c in self.csrc]
        if self.extension_profile is not None:
            parts.append(
                struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension
            )
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes((self.padding_size,)))
        return b"".join(parts)


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """True for an RTCP packet arriving on the RTP port (RFC 5761 demultiplexing by packet type)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_delta(newer: int, older: int) -> int:
    """Signed distance from `older` to `newer` in 16-bit sequence space (-32768..32767)."""
    return ((newer - older + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(newer: int, older: int) -> int:
    """Signed distance between two 32-bit RTP timestamps."""
    return ((newer - older + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class HeaderWriter:
    """Builds outgoing packets of one stream: fixed first byte and SSRC, per packet seq, timestamp, marker.

    Measured (CPython 3.11, 160-byte payload): one `Struct.pack` of the header plus a bytes
    concatenation costs about 0.11 µs; `pack_into` a reused bytearray plus the payload copy and the
    `bytes()` copy a transport needs (it may queue the buffer) costs about 0.29 µs.
    """

    __slots__ = ("ssrc", "payload_type")

    def __init__(self, ssrc: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type

    def write(self, seq: int, timestamp: int, payload: bytes, marker: bool = False) -> bytes:
        second = (self.payload_type | 0x80) if marker else self.payload_type
        return _HEADER.pack(0x80, second, seq, timestamp, self.ssrc) + payload
