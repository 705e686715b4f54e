"""Which source addresses a stream accepts packets from, pure (RTP and RTCP alike).

Strict mode: only the address and port the SDP named. NAT mode (symmetric RTP, RFC 4961's idea of
sending where the peer's packets come from): the first packet whose source IP is the SDP's or the
signalling peer's, within `LATCH_WINDOW_S` of the start, latches the stream to its exact source; the
SDP address itself always latches. Once latched the stream never moves: every other source is
refused. The old rule (first packet from anywhere latches, re-latch after 1 s of silence; ports
handed out in order) let anyone spraying RTP at the next ports take over a caller's audio (issue 15).
The signalling peer's IP matters for phones that offer an address they do not send from: linphone's
default offer says `c=IN IP6 fd00::2` while its packets come from its SIP address (issue 24).
A port's sockets serve one call after another (`ivr.rtp.recycling`), and a phone may keep sending for a
while after its BYE: the source the port's previous call was latched to is `stale` and never latched to in
NAT mode (a redial from the same phone or a call through the same SBC shares its IP), or a late packet of
the old call would take the new caller's stream.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.rtp.address import Address

LATCH_WINDOW_S = 2.0
"""How long after the start a NAT-mode stream may latch to a port the SDP did not name."""


class Admission(enum.Enum):
    ACCEPTED = "accepted"
    LATCHED = "latched"
    """Accepted, and the first packet of the stream: it now comes only from this source."""
    REFUSED = "refused"


@dataclass(slots=True)
class SourceGate:
    expected: Address
    """The address and port the SDP named."""
    symmetric: bool = True
    """NAT mode: latch once to a source whose IP is the SDP's or `peer_host`."""
    peer_host: str | None = None
    """The signalling peer's IP (where its INVITE came from)."""
    latch_until: float = LATCH_WINDOW_S
    """Until when (clock time) NAT mode may latch to another port or the signalling IP."""
    source: Address | None = None
    """The source latched to (the exact one packets are accepted from), None before the first."""
    stale: Address | None = None
    """The source the port's previous call was latched to: never latched to unless the SDP names it."""

    @classmethod
    def opened(
        cls, expected: Address, now: float, *, symmetric: bool = True, peer_host: str | None = None,
        stale: Address | None = None,
    ) -> SourceGate:
        return cls(expected, symmetric, peer_host, now + LATCH_WINDOW_S, stale=stale)

    def admit(self, source: Address, now: float) -> Admission:
        if source == self.source:
            return Admission.ACCEPTED
        if self.source is None and self._may_latch(source, now):
            self.source = source
            return Admission.LATCHED
        return Admission.REFUSED

    def accepts(self, source: Address) -> bool:
        """Whether a packet from `source` belongs to the stream, without latching (rtcp-mux)."""
        return source == self.source or (self.source is None and source == self.expected)

    def _may_latch(self, source: Address, now: float) -> bool:
        if source == self.expected:
            return True
        if source == self.stale:
            return False
        return self.symmetric and now <= self.latch_until and source[0] in (self.expected[0], self.peer_host)
