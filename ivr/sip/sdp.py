"""SDP (RFC 4566) for G.711 telephony, and the offer/answer rules of RFC 3264 we need.

We speak PCMU (0), PCMA (8) and RFC 4733 telephone-event/8000 on one audio stream. An answer
takes the first codec of the offer we support, mirrors the direction (offer sendonly -> answer
recvonly; c=0.0.0.0 is RFC 2543 hold) and rejects every other stream with port 0. An offer with
nothing usable raises `SdpNegotiationError`, which the user agent turns into 488.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.sip.errors import SdpError, SdpNegotiationError
from ivr.sip.uri import show

#: RFC 3551 static payload types: pt -> (encoding name, clock rate)
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}
TELEPHONE_EVENT = "telephone-event"
DEFAULT_DTMF_PAYLOAD_TYPE = 101
HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})
_RTP_PROTOS = frozenset({"RTP/AVP", "RTP/SAVP"})  # SAVP: SRTP, keys by SDES (ivr.sip.sdes)


class Direction(enum.Enum):
    """Media direction attribute (RFC 3264 section 5.1), from the describing party's view."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def mirrored(self) -> Direction:
        """The direction an answer takes to this offer direction: sendonly <-> recvonly."""
        return _MIRROR[self]


_MIRROR = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(slots=True)
class MediaDescription:
    """One m= section. `formats` are RTP payload types; non-RTP formats are kept in `fmt_tokens`."""

    media: str
    port: int
    proto: str
    formats: list[int] = field(default_factory=list)
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    """payload type -> (encoding name, clock rate; 0 when the rtpmap gave none)"""
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: Direction | None = None
    connection_address: str | None = None
    ptime_ms: int | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    fmt_tokens: list[str] = field(default_factory=list)
    port_count: int | None = None
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def codec(self, payload_type: int) -> tuple[str, int] | None:
        """(encoding name, clock rate) of a payload type, from a=rtpmap or the static table."""
        return self.rtpmap.get(payload_type) or STATIC_PAYLOADS.get(payload_type)

    def find_codec(self, names: Iterable[str]) -> int | None:
        """The first payload type, in this description's order, whose codec is one of `names` at 8 kHz."""
        wanted = {n.upper() for n in names}
        for pt in self.formats:
            codec = self.codec(pt)
            if codec is not None and codec[0].upper() in wanted and codec[1] == 8000:
                return pt
        return None

    def dtmf_payload_type(self) -> int | None:
        """The telephone-event/8000 payload type offered, if any."""
        for pt in self.formats:
            codec = self.rtpmap.get(pt)
            if codec is not None and codec[0].lower() == TELEPHONE_EVENT and codec[1] == 8000:
                return pt
        return None

    def _lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        fmts = [str(pt) for pt in self.formats] if self.formats or not self.fmt_tokens else self.fmt_tokens
        out = [f"m={self.media} {port} {self.proto} {' '.join(fmts)}".rstrip()]
        out += [f"{k}={v}" for k, v in self.other_lines if k == "i"]
        if self.connection_address is not None:
            out.append(f"c=IN {_addr_type(self.connection_address)} {self.connection_address}")
        out += [f"{k}={v}" for k, v in self.other_lines if k != "i"]
        for pt in self.formats:
            if pt in self.rtpmap:
                name, rate = self.rtpmap[pt]
                out.append(f"a=rtpmap:{pt} {name}/{rate}" if rate else f"a=rtpmap:{pt} {name}")
            if pt in self.fmtp:
                out.append(f"a=fmtp:{pt} {self.fmtp[pt]}")
        if self.ptime_ms is not None:
            out.append(f"a=ptime:{self.ptime_ms}")
        out += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        if self.direction is not None:
            out.append(f"a={self.direction.value}")
        return out


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body; `parse(bytes | str)` and `serialize() -> bytes`."""

    session_id: str
    session_version: str
    origin_address: str
    username: str = "-"
    session_name: str = "-"
    connection_address: str | None = None
    direction: Direction | None = None
    media: list[MediaDescription] = field(default_factory=list)
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body; raises SdpError naming the line at fault."""
        return _Parser().run(data)

    def serialize(self) -> bytes:
        return str(self).encode()

    def __str__(self) -> str:
        out = [
            "v=0",
            f"o={self.username} {self.session_id} {self.session_version} IN "
            f"{_addr_type(self.origin_address)} {self.origin_address}",
            f"s={self.session_name}",
        ]
        out += [f"{k}={v}" for k, v in self.other_lines if k in "iuep"]
        if self.connection_address is not None:
            out.append(f"c=IN {_addr_type(self.connection_address)} {self.connection_address}")
        out += [f"{k}={v}" for k, v in self.other_lines if k == "b"]
        out.append(f"t={self.timing}")
        out += [f"{k}={v}" for k, v in self.other_lines if k not in "iuepb"]
        out += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        if self.direction is not None:
            out.append(f"a={self.direction.value}")
        for m in self.media:
            out += m._lines()
        return "\r\n".join(out) + "\r\n"

    def effective_direction(self, media: MediaDescription) -> Direction:
        """The stream's direction: its own attribute, else the session's, else sendrecv; a hold
        address (c=0.0.0.0, RFC 2543) means the describer must not be sent to."""
        direction = media.direction or self.direction or Direction.SENDRECV
        if self.media_address(media) in HOLD_ADDRESSES:
            if direction is Direction.SENDRECV:
                return Direction.SENDONLY
            if direction is Direction.RECVONLY:
                return Direction.INACTIVE
        return direction

    def media_address(self, media: MediaDescription) -> str | None:
        """Where the stream's RTP goes: the media c= line, else the session one."""
        return media.connection_address or self.connection_address


def _addr_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


class _Parser:
    """Line-by-line SDP parser; keeps the lines it does not model so serialization keeps them."""

    def __init__(self) -> None:
        self.session: SessionDescription | None = None
        self.current: MediaDescription | None = None
        self.number = 0

    def fail(self, why: str) -> SdpError:
        return SdpError(f"bad SDP line {self.number}: {why}")

    def run(self, data: bytes | str) -> SessionDescription:
        if isinstance(data, bytes):
            try:
                data = data.decode()
            except UnicodeDecodeError:
                raise SdpError("bad SDP: not valid UTF-8") from None
        lines = [ln.rstrip("\r") for ln in data.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        if not lines or lines[0] != "v=0":
            raise SdpError("bad SDP: must start with v=0")
        for self.number, line in enumerate(lines, start=1):
            kind, eq, value = line.partition("=")
            if len(kind) != 1 or not eq:
                raise self.fail(f"{show(line, 40)} is not type=value")
            if self.number > 1:
                self.line(kind, value)
        if self.session is None:
            raise SdpError("bad SDP: missing o= line")
        return self.session

    def line(self, kind: str, value: str) -> None:
        if kind == "o":
            self.origin(value)
            return
        session = self.session
        if session is None:
            raise self.fail("o= must come right after v=")
        if kind == "m":
            self.current = self.media(value)
            session.media.append(self.current)
        elif kind == "c":
            address = self.connection(value)
            if self.current is None:
                session.connection_address = address
            else:
                self.current.connection_address = address
        elif kind == "a":
            self.attribute(value)
        elif self.current is not None:
            self.current.other_lines.append((kind, value))
        elif kind == "s":
            session.session_name = value
        elif kind == "t":
            session.timing = value
        else:
            session.other_lines.append((kind, value))

    def origin(self, value: str) -> None:
        parts = value.split()
        if len(parts) != 6 or parts[3] != "IN" or parts[4] not in ("IP4", "IP6"):
            raise self.fail(f"bad o= line {show(value, 60)}")
        self.session = SessionDescription(parts[1], parts[2], parts[5], username=parts[0])

    def connection(self, value: str) -> str:
        parts = value.split()
        if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
            raise self.fail(f"bad c= line {show(value, 60)}")
        return parts[2].split("/", 1)[0]

    def media(self, value: str) -> MediaDescription:
        parts = value.split()
        if len(parts) < 3:
            raise self.fail(f"bad m= line {show(value, 60)}")
        port_text, _, count_text = parts[1].partition("/")
        if not port_text.isdigit() or int(port_text) > 65535 or (count_text and not count_text.isdigit()):
            raise self.fail(f"bad port {show(parts[1], 20)} in m= line")
        m = MediaDescription(parts[0], int(port_text), parts[2])
        m.port_count = int(count_text) if count_text else None
        if "RTP" in parts[2].upper():
            for token in parts[3:]:
                if not token.isdigit() or int(token) > 127:
                    raise self.fail(f"bad payload type {show(token, 20)} in m= line")
                m.formats.append(int(token))
        else:
            m.fmt_tokens = parts[3:]
        return m

    def attribute(self, value: str) -> None:
        name, colon, arg = value.partition(":")
        direction = _DIRECTIONS.get(value)
        m = self.current
        if m is None:
            assert self.session is not None
            if direction is not None:
                self.session.direction = direction
            else:
                self.session.attributes.append((name, arg if colon else None))
            return
        if direction is not None:
            m.direction = direction
        elif name == "rtpmap":
            pt, rate_spec = self.payload_attribute(arg)
            parts = rate_spec.split("/")
            if not parts[0] or (len(parts) > 1 and not parts[1].isdigit()):
                raise self.fail(f"bad rtpmap {show(arg, 40)}")
            m.rtpmap[pt] = (parts[0], int(parts[1]) if len(parts) > 1 else 0)
        elif name == "fmtp":
            pt, params = self.payload_attribute(arg)
            m.fmtp[pt] = params
        elif name == "ptime" and arg.isdigit():
            m.ptime_ms = int(arg)
        else:
            m.attributes.append((name, arg if colon else None))

    def payload_attribute(self, arg: str) -> tuple[int, str]:
        pt_text, _, rest = arg.partition(" ")
        if not pt_text.isdigit():
            raise self.fail(f"bad payload type {show(pt_text, 20)} in attribute")
        return int(pt_text), rest.strip()


@dataclass(slots=True, frozen=True)
class NegotiatedMedia:
    """What an SDP (the answer we got, or the offer we answered) settles for our one audio stream."""

    payload_type: int
    codec: str
    clock_rate_hz: int
    dtmf_payload_type: int | None
    remote_address: str
    remote_port: int
    direction: Direction
    """The remote party's direction; we send when it receives, and receive when it sends."""
    ptime_ms: int | None = None

    @property
    def we_send(self) -> bool:
        return self.direction.receives and self.remote_address not in HOLD_ADDRESSES

    @property
    def we_receive(self) -> bool:
        return self.direction.sends


def _usable_audio(media: MediaDescription) -> bool:
    return media.media == "audio" and media.port != 0 and media.proto.upper() in _RTP_PROTOS


def negotiated_codec(
    sdp: SessionDescription, *, supported: Iterable[str] = ("PCMU", "PCMA")
) -> NegotiatedMedia:
    """The codec, DTMF payload type, remote RTP address and direction of the first usable audio
    stream of `sdp`; raises SdpNegotiationError when there is none."""
    supported = tuple(supported)
    for media in sdp.media:
        if not _usable_audio(media):
            continue
        pt = media.find_codec(supported)
        address = sdp.media_address(media)
        if pt is None or address is None:
            continue
        name, rate = media.codec(pt) or ("?", 0)
        return NegotiatedMedia(
            pt,
            name.upper(),
            rate,
            media.dtmf_payload_type(),
            address,
            media.port,
            sdp.effective_direction(media),
            media.ptime_ms,
        )
    raise SdpNegotiationError(_no_codec_reason(sdp, supported))


negotiated_media = negotiated_codec


def _no_codec_reason(sdp: SessionDescription, supported: tuple[str, ...]) -> str:
    offered: list[str] = []
    for media in sdp.media:
        if _usable_audio(media):
            for pt in media.formats:
                codec = media.codec(pt)
                offered.append(f"{codec[0]}/{codec[1]}" if codec else str(pt))
    if not offered:
        return "no usable audio stream in SDP"
    return f"no common codec: SDP offers {', '.join(offered)}; we support {', '.join(supported)}"


def answer_offer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    session_id: int | str,
    session_version: int | str | None = None,
    supported: Iterable[str] = ("PCMU", "PCMA"),
    dtmf: bool = True,
    ptime_ms: int = 20,
) -> SessionDescription:
    """Our answer (RFC 3264 section 6): the first audio stream we can use is accepted with the
    first supported codec of the offer (plus telephone-event if offered and `dtmf`); every other
    stream is rejected with port 0. Raises SdpNegotiationError (-> 488) when nothing is usable."""
    supported = tuple(supported)
    answer = SessionDescription(
        str(session_id),
        str(session_version if session_version is not None else session_id),
        local_address,
        connection_address=local_address,
    )
    accepted = False
    for media in offer.media:
        pt = media.find_codec(supported) if not accepted and _usable_audio(media) else None
        if pt is None:
            answer.media.append(_rejected(media))
            continue
        accepted = True
        codec = media.codec(pt)
        assert codec is not None
        m = MediaDescription("audio", local_port, media.proto, [pt], {pt: codec}, ptime_ms=ptime_ms)
        dtmf_pt = media.dtmf_payload_type() if dtmf else None
        if dtmf_pt is not None:
            m.formats.append(dtmf_pt)
            m.rtpmap[dtmf_pt] = (TELEPHONE_EVENT, 8000)
            m.fmtp[dtmf_pt] = media.fmtp.get(dtmf_pt, "0-15")
        m.direction = offer.effective_direction(media).mirrored()
        answer.media.append(m)
    if not accepted:
        raise SdpNegotiationError(_no_codec_reason(offer, supported))
    return answer


def _rejected(media: MediaDescription) -> MediaDescription:
    """RFC 3264 section 6: a declined stream keeps its media, proto and formats, with port 0."""
    return MediaDescription(
        media.media, 0, media.proto, list(media.formats), fmt_tokens=list(media.fmt_tokens)
    )


def make_offer(
    *,
    local_address: str,
    local_port: int,
    session_id: int | str,
    session_version: int | str | None = None,
    codecs: Iterable[str] = ("PCMU", "PCMA"),
    dtmf_payload_type: int | None = DEFAULT_DTMF_PAYLOAD_TYPE,
    direction: Direction = Direction.SENDRECV,
    ptime_ms: int = 20,
) -> SessionDescription:
    """An offer with one audio stream: the G.711 `codecs` in preference order, plus telephone-event."""
    static = {name: pt for pt, (name, _) in STATIC_PAYLOADS.items()}
    m = MediaDescription("audio", local_port, "RTP/AVP", ptime_ms=ptime_ms, direction=direction)
    for name in codecs:
        pt = static.get(name.upper())
        if pt is None:
            raise ValueError(f"codec {name!r} has no static payload type")
        m.formats.append(pt)
        m.rtpmap[pt] = (name.upper(), 8000)
    if dtmf_payload_type is not None:
        m.formats.append(dtmf_payload_type)
        m.rtpmap[dtmf_payload_type] = (TELEPHONE_EVENT, 8000)
        m.fmtp[dtmf_payload_type] = "0-15"
    version = str(session_version if session_version is not None else session_id)
    return SessionDescription(
        str(session_id), version, local_address, connection_address=local_address, media=[m]
    )
