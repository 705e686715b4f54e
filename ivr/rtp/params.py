"""What SDP negotiation decided for one call's media: the session's input from the call layer."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.rtp.address import Address
from ivr.rtp.srtp import SrtpKeys


@dataclass(slots=True, frozen=True)
class MediaParams:
    """What SDP negotiation decided for this call's audio."""

    remote: Address
    """The peer's RTP address and port from its SDP (c= and m= lines)."""
    payload_type: int = 0
    """0 PCMU or 8 PCMA."""
    telephone_event_pt: int | None = 101
    """The negotiated telephone-event payload type, None if the peer offered none."""
    remote_rtcp: Address | None = None
    """From a=rtcp; by default the RTP port + 1."""
    inband_dtmf: bool | None = None
    """Detect keys in the audio; None means only when no telephone-event type was negotiated."""
    symmetric: bool = True
    """NAT mode (`ivr.rtp.gate`): latch once, in the first 2 s, to a packet from the SDP's IP or
    `peer_host`, and send there; False accepts and sends only to the SDP's address and port."""
    peer_host: str | None = None
    """The signalling peer's IP (where the INVITE came from), which NAT mode may latch to."""
    confirmed: bool = True
    """The peer's address is confirmed: a UAC got it in a 2xx. A UAS answering an INVITE passes False
    and calls `MediaSession.confirm()` when the ACK comes: until then (or the caller's first packet)
    nothing is sent, so a forged offer cannot aim our RTP at a third party (issue 15)."""
    srtp: SrtpKeys | None = None
    """SRTP keys (SDES) when the call's media is RTP/SAVP; None: plain RTP."""
