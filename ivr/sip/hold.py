"""Hold and direction changes in SDP bodies (RFC 3264 8.4): what a re-INVITE asks, and our answer to it.

Pure functions over SDP bytes, used by the user agent's call leg (`ivr.sipua.leg`) to answer a peer's
re-INVITE/UPDATE and to put the peer on hold or take it off.
"""

from __future__ import annotations

from ivr.sip.errors import SdpError
from ivr.sip.sdp import Direction, SessionDescription

__all__ = ["is_hold", "offered_direction", "with_direction"]


def offered_direction(sdp: bytes) -> Direction:
    """The direction of the first audio stream of `sdp` (a hold address counts), sendrecv if none."""
    try:
        session = SessionDescription.parse(sdp)
    except SdpError:
        return Direction.SENDRECV
    for media in session.media:
        if media.media == "audio" and media.port:
            return session.effective_direction(media)
    return Direction.SENDRECV


def is_hold(sdp: bytes) -> bool:
    """True when the peer's SDP asks us not to send (sendonly/inactive, or c=0.0.0.0)."""
    return bool(sdp) and not offered_direction(sdp).receives


def with_direction(sdp: bytes, direction: Direction) -> bytes:
    """Our SDP with every stream set to `direction` and the origin version bumped (RFC 3264 8)."""
    session = SessionDescription.parse(sdp)
    for media in session.media:
        media.direction = direction
    session.direction = None
    version = int(session.session_version) if session.session_version.isdigit() else 0
    session.session_version = str(version + 1)
    return session.serialize()
