"""RTCP (RFC 3550 section 6): sender/receiver reports on the wire, and the receive statistics they carry.

Wire objects parse and serialize (pure); `ReceptionStats` keeps the per-source counters of
RFC 3550 appendix A.1/A.3/A.8 (extended highest sequence number, loss, interarrival jitter) and
turns them into a `ReportBlock`. Times are arguments: the adapter passes NTP time and arrival time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ivr.rtp.errors import RtpParseError
from ivr.rtp.packet import seq_delta

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
_SDES_CNAME = 1
_NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)."""

_COMMON = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = struct.Struct("!IQIII")


def ntp_timestamp(unix_s: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point since 1900) for a Unix time in seconds."""
    return int((unix_s + _NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, the unit of LSR (RFC 3550 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(slots=True, frozen=True)
class ReportBlock:
    """Reception report about one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int
    """Lost fraction since the previous report, in 1/256."""
    packets_lost: int
    """Cumulative packets lost (signed 24-bit: duplicates can make it negative)."""
    highest_sequence: int
    """Extended highest sequence number received (cycles << 16 | seq)."""
    jitter: int
    """Interarrival jitter in timestamp units."""
    lsr: int = 0
    """Middle 32 bits of the NTP time of the last SR from this source, 0 if none."""
    dlsr: int = 0
    """Delay since that SR, in 1/65536 s."""

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        packets_lost = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, packets_lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.packets_lost)).to_bytes(3, "big", signed=True)
        return _BLOCK.pack(
            self.ssrc, self.fraction_lost, lost, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


@dataclass(slots=True, frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        )
        return _wrap(RTCP_SR, len(self.reports), body + b"".join(r.serialize() for r in self.reports))


@dataclass(slots=True, frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _wrap(RTCP_RR, len(self.reports), body)


@dataclass(slots=True, frozen=True)
class SourceDescription:
    """An SDES packet reduced to what we use: each source's CNAME."""

    cnames: tuple[tuple[int, str], ...]

    def serialize(self) -> bytes:
        chunks = []
        for ssrc, cname in self.cnames:
            text = cname.encode()[:255]
            chunk = struct.pack("!IBB", ssrc, _SDES_CNAME, len(text)) + text + b"\x00"
            chunks.append(chunk + bytes(-len(chunk) % 4))
        return _wrap(RTCP_SDES, len(self.cnames), b"".join(chunks))


@dataclass(slots=True, frozen=True)
class Goodbye:
    ssrcs: tuple[int, ...]

    def serialize(self) -> bytes:
        return _wrap(RTCP_BYE, len(self.ssrcs), b"".join(struct.pack("!I", s) for s in self.ssrcs))


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye


def compound_report(
    ssrc: int,
    cname: str,
    sender: tuple[int, int, int, int] | None,
    block: ReportBlock | None,
    *,
    goodbye: bool = False,
) -> bytes:
    """A compound RTCP packet (RFC 3550 6.1): SR if `sender` gives (NTP, RTP timestamp, packets,
    octets), else RR; then SDES with our CNAME; then BYE when leaving."""
    blocks = (block,) if block is not None else ()
    report = SenderReport(ssrc, *sender, blocks) if sender is not None else ReceiverReport(ssrc, blocks)
    parts = [report.serialize(), SourceDescription(((ssrc, cname),)).serialize()]
    if goodbye:
        parts.append(Goodbye((ssrc,)).serialize())
    return b"".join(parts)


def _wrap(packet_type: int, count: int, body: bytes) -> bytes:
    return _COMMON.pack(0x80 | count, packet_type, len(body) // 4) + body


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram; packet types we do not use (APP, feedback) are skipped."""
    data = bytes(data)
    if len(data) < 4:
        raise RtpParseError("RTCP packet length is less than 4 bytes")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtpParseError("RTCP packet is truncated")
        first, packet_type, words = _COMMON.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtpParseError("RTCP packet has invalid version")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtpParseError("RTCP packet is truncated")
        body = data[offset + 4 : end]
        if first & 0x20:
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtpParseError("RTCP packet has invalid padding length")
            body = body[: -body[-1]]
        parsed = _parse_one(packet_type, first & 0x1F, body)
        if parsed is not None:
            packets.append(parsed)
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket | None:
    if packet_type == RTCP_SR:
        if len(body) < _SENDER_INFO.size + 24 * count:
            raise RtpParseError("RTCP sender report is truncated")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        blocks = tuple(ReportBlock.parse(body, _SENDER_INFO.size + 24 * i) for i in range(count))
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)
    if packet_type == RTCP_RR:
        if len(body) < 4 + 24 * count:
            raise RtpParseError("RTCP receiver report is truncated")
        blocks = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
        return ReceiverReport(struct.unpack_from("!I", body)[0], blocks)
    if packet_type == RTCP_SDES:
        return SourceDescription(_parse_sdes(body, count))
    if packet_type == RTCP_BYE:
        if len(body) < 4 * count:
            raise RtpParseError("RTCP goodbye is truncated")
        return Goodbye(struct.unpack_from(f"!{count}I", body))
    return None


def _parse_sdes(body: bytes, count: int) -> tuple[tuple[int, str], ...]:
    cnames: list[tuple[int, str]] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtpParseError("RTCP source description is truncated")
        ssrc = struct.unpack_from("!I", body, offset)[0]
        offset += 4
        while offset < len(body) and body[offset] != 0:
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtpParseError("RTCP source description item is truncated")
            item, length = body[offset], body[offset + 1]
            if item == _SDES_CNAME:
                cnames.append((ssrc, body[offset + 2 : offset + 2 + length].decode("utf-8", "replace")))
            offset += 2 + length
        offset = (offset + 4) & ~3
    return tuple(cnames)


_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_SEEN_WINDOW = 64
"""Sequence numbers remembered below the highest, to tell a duplicate from a late packet."""
_SEEN_MASK = (1 << _SEEN_WINDOW) - 1


@dataclass(slots=True)
class ReceptionStats:
    """Receive-side counters for one remote source (RFC 3550 A.1, A.3, A.8).

    A.3 counts duplicates as received, so its cumulative loss goes negative with them: RFC 4733
    senders repeat an event's end packet (linphone with the same sequence number three times), and
    "lost: -2" was reported for a call with no loss at all (issue 24). A packet whose sequence number
    was already received (within the last 64) is counted in `duplicates`, not `received`, and `lost`
    never goes below zero.
    """

    clock_rate_hz: int = 8000
    base_seq: int = -1
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    duplicates: int = 0
    jitter: float = 0.0
    """Interarrival jitter estimate in timestamp units."""
    _expected_prior: int = 0
    _received_prior: int = 0
    _last_transit: float | None = field(default=None, repr=False)
    _seen: int = field(default=0, repr=False)
    """Bit i set: the packet `i` below the highest sequence number was received."""
    last_sr_ntp_middle: int = 0
    last_sr_arrival: float | None = None
    """Monotonic time the last SR from this source arrived (for DLSR)."""

    def update(self, seq: int, timestamp: int, arrival_s: float, *, timing: bool = True) -> None:
        """Count one received packet (any order); with `timing`, update jitter from its timestamp.

        Telephone-event packets repeat their event's start timestamp, so they are counted without timing.
        """
        if self.base_seq < 0:
            self._restart(seq)
        max_seq = self.max_seq
        delta = seq_delta(seq, max_seq)
        if 0 < delta < _MAX_DROPOUT:
            if seq < max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
            self._seen = ((self._seen << delta) | 1) & _SEEN_MASK
        elif delta > 0 or delta < -_MAX_MISORDER:
            self._restart(seq)
            self._seen = 1
        else:  # the highest again, or one below it: a duplicate or a late packet
            bit = 1 << -delta if -delta < _SEEN_WINDOW else 0
            if self._seen & bit:
                self.duplicates += 1
                return
            self._seen |= bit
        self.received += 1
        if not timing:
            return
        rate = self.clock_rate_hz
        transit = arrival_s * rate - timestamp
        last = self._last_transit
        if last is not None:
            d = abs(transit - last)
            if d < rate:  # a timestamp jump (new talkspurt source) is not jitter
                self.jitter += (d - self.jitter) / 16.0
        self._last_transit = transit

    def _restart(self, seq: int) -> None:
        self.base_seq, self.max_seq, self.cycles, self.received = seq, seq, 0, 0
        self._expected_prior = self._received_prior = 0
        self._seen = 0
        self._last_transit = None

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.base_seq >= 0 else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def sender_report_received(self, ntp: int, arrival_s: float) -> None:
        self.last_sr_ntp_middle = ntp_middle(ntp)
        self.last_sr_arrival = arrival_s

    def report_block(self, ssrc: int, now: float) -> ReportBlock:
        """A report block for this source, closing the current reporting interval."""
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (
            (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        )
        dlsr = 0
        if self.last_sr_arrival is not None:
            dlsr = int((now - self.last_sr_arrival) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc,
            min(fraction, 255),
            self.lost,
            self.extended_max & 0xFFFFFFFF,
            int(self.jitter),
            self.last_sr_ntp_middle,
            dlsr,
        )


def round_trip_s(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT from a report block about our own stream (RFC 3550 6.4.1), None without an SR echo."""
    if block.lsr == 0:
        return None
    rtt = (ntp_middle(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    return rtt / 65536.0 if rtt < 0x80000000 else None
