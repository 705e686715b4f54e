"""One session's RTCP (RFC 3550 6): reports sent every interval and on leaving, reports read.

Sent only where RTP may go (the peer is confirmed); the target is the SDP's RTCP address (a=rtcp, or
the RTP port + 1) until a report from the peer latches it. Received reports pass a `SourceGate` of
their own (as RTP: the SDP's address, or in NAT mode one latch in the first 2 s) and the size cap;
the rest are dropped and counted. Send errors are counted only: RTCP failing never ends a call.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ivr.clock import Clock
from ivr.rtp.address import Address, can_reach
from ivr.rtp.errors import RtpParseError
from ivr.rtp.gate import LATCH_WINDOW_S, Admission, SourceGate
from ivr.rtp.health import MediaCounters, SendHealth
from ivr.rtp.inbound import MAX_DATAGRAM_BYTES, InboundStream
from ivr.rtp.net import DatagramPort
from ivr.rtp.outbound import OutboundStream
from ivr.rtp.params import MediaParams
from ivr.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    SenderReport,
    compound_report,
    ntp_timestamp,
    parse_rtcp,
    round_trip_s,
)

Streams = Callable[[], tuple[InboundStream, OutboundStream] | None]


def _no_streams() -> None:
    return None


def _never() -> bool:
    return False
"""The session's streams once started (None before)."""


class RtcpChannel:
    def __init__(
        self,
        port: DatagramPort,
        local_host: str,
        clock: Clock,
        cname: str,
        counters: MediaCounters,
        logger: structlog.typing.FilteringBoundLogger,
        *,
        streams: Streams,
        may_send: Callable[[], bool],
        tick: Callable[[], int],
    ) -> None:
        self._streams = streams
        self._may_send = may_send
        """Whether the peer is confirmed (RTCP, like RTP, waits for the ACK or the peer's first packet)."""
        self._tick = tick
        self._port = port
        self._local_host = local_host
        self._clock = clock
        self._cname = cname
        self._counters = counters
        self._log = logger
        self._health = SendHealth(fail_after_s=float("inf"))
        self.gate: SourceGate | None = None
        self.target: Address | None = None
        self._packets_at_last_report = 0
        self.rtt_s: float | None = None
        """Round-trip time from the last RTCP receiver report about our stream."""

    def aim(self, params: MediaParams, now: float, *, new_peer: bool) -> None:
        """Where reports go and come from, for these parameters (a new gate when the peer moved)."""
        expected = params.remote_rtcp or (params.remote[0], params.remote[1] + 1)
        if new_peer or self.gate is None:
            self.gate = SourceGate.opened(expected, now, symmetric=params.symmetric, peer_host=params.peer_host)
        latched = self.gate.source if params.symmetric else None
        self.target = latched or (expected if can_reach(self._local_host, expected[0]) else None)

    def follow(self, rtp_source: Address, now: float) -> None:
        """RTP latched (NAT mode): until a report latches, send ours beside it (port + 1), and give
        the peer's reports a latch window from now (they come every few seconds, often after 2 s)."""
        gate = self.gate
        if gate is None or gate.source is not None:
            return
        gate.latch_until = max(gate.latch_until, now + LATCH_WINDOW_S)
        self.target = (rtp_source[0], rtp_source[1] + 1)

    def on_report(self, now: float) -> None:
        """The periodic report (SR when we sent since the last one, else RR): the media clock calls it."""
        streams = self._streams()
        if streams is not None and self._may_send():
            self._send(self._build(now, *streams))

    def goodbye(self) -> None:
        """The last report, with BYE (the session closes). Then the channel lets go of the session's streams
        (closures over the session: freed by reference counting, not left in a cycle for the GC)."""
        streams = self._streams()
        if streams is not None and self._may_send():
            self._send(self._build(self._clock.now(), *streams, goodbye=True))
        self._streams, self._may_send = _no_streams, _never

    def _build(self, now: float, inbound: InboundStream, outbound: OutboundStream, *, goodbye: bool = False) -> bytes:
        block = None
        if inbound.remote_ssrc is not None and inbound.stats.received:
            block = inbound.stats.report_block(inbound.remote_ssrc, now)
        sender = None
        if outbound.packets_sent > self._packets_at_last_report:  # we sent since the last report: SR
            sender = (
                ntp_timestamp(self._clock.wall().timestamp()),
                outbound.timestamp_at(self._tick()),
                outbound.packets_sent,
                outbound.octets_sent,
            )
        self._packets_at_last_report = outbound.packets_sent
        return compound_report(outbound.ssrc, self._cname, sender, block, goodbye=goodbye)

    def _send(self, data: bytes) -> None:
        if self.target is None:
            return
        try:
            self._port.sendto(data, self.target)
        except (OSError, ValueError) as exc:
            self.error(exc)

    def error(self, exc: Exception) -> None:
        self._counters.send_errors += 1
        note = self._health.failed(self._clock.now())
        if note.log:
            self._log.warning("rtcp_send_failed", error=str(exc), target=self.target, not_logged=note.suppressed)

    def on_datagram(self, data: bytes, source: Address) -> None:
        """A datagram on the RTCP port."""
        streams = self._streams()
        if streams is not None and self._admit(data, source, self._clock.now()):
            self._read(data, source, *streams)

    def on_muxed(self, data: bytes, source: Address, gate: SourceGate) -> None:
        """An RTCP packet on the RTP port (RFC 5761 rtcp-mux): admitted by the RTP stream's `gate`."""
        streams = self._streams()
        if streams is not None and gate.accepts(source) and len(data) <= MAX_DATAGRAM_BYTES:
            self._read(data, source, *streams)
        else:
            self._counters.rtcp_dropped += 1

    def _admit(self, data: bytes, source: Address, now: float) -> bool:
        """Whether a datagram on the RTCP port is the peer's report (latching in NAT mode)."""
        gate = self.gate
        admission = gate.admit(source, now) if gate is not None and len(data) <= MAX_DATAGRAM_BYTES else None
        if admission is None or admission is Admission.REFUSED:
            self._counters.rtcp_dropped += 1
            return False
        if admission is Admission.LATCHED and gate is not None and gate.symmetric:
            self.target = source
        return True

    def _read(self, data: bytes, source: Address, inbound: InboundStream, outbound: OutboundStream) -> None:
        """Read an admitted report: the peer's SR (for our DLSR) and its blocks about us (RTT)."""
        try:
            packets = parse_rtcp(data)
        except RtpParseError as exc:
            self._counters.rtcp_dropped += 1
            self._log.debug("rtcp_malformed", error=str(exc), source=source)
            return
        now = self._clock.now()
        for packet in packets:
            if isinstance(packet, SenderReport):
                inbound.stats.sender_report_received(packet.ntp_timestamp, now)
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == outbound.ssrc:
                        rtt = round_trip_s(block, ntp_timestamp(self._clock.wall().timestamp()))
                        self.rtt_s = rtt if rtt is not None else self.rtt_s
            elif isinstance(packet, Goodbye):
                self._log.info("rtcp_bye_received", ssrcs=list(packet.ssrcs))
