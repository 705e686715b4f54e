"""Errors raised by the RTP package."""

from __future__ import annotations

from ivr.errors import IvrError


class RtpError(IvrError):
    """Base of every RTP/RTCP error."""


class RtpParseError(RtpError):
    """A peer sent bytes that are not a valid RTP or RTCP packet; the message says what is wrong."""


class PortsExhausted(RtpError):
    """No even RTP port (with its RTCP neighbour) is free in the configured range."""


class MediaStateError(RtpError):
    """A media operation was asked in a state that cannot do it (closed, bridged, on hold)."""


class MediaFailedError(MediaStateError):
    """The session's media failed (see `MediaFailed`): what was playing or sending cannot complete."""

    def __init__(self, message: str, reason: object = None) -> None:
        super().__init__(message)
        self.reason = reason
        """The `MediaFailure` behind it, when there is one."""


class PlaybackStalled(MediaStateError):
    """A prompt made no progress past its deadline (the media clock is not driving this session)."""
