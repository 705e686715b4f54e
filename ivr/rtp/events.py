"""Events the RTP package reports to its users."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DtmfSource(enum.Enum):
    """How a key press reached us."""

    RFC4733 = "rfc4733"
    """RTP telephone-event packets."""
    INFO = "info"
    """A SIP INFO request (application/dtmf-relay or application/dtmf), fed in by the SIP layer."""
    INBAND = "inband"
    """Dual tones in the audio, found by the Goertzel detector."""


@dataclass(slots=True, frozen=True)
class DtmfReceived:
    """The caller pressed a key."""

    digit: str
    """One of 0-9 * # A-D."""
    source: DtmfSource
    at: float
    """Monotonic time (the session clock) the key was recognised."""


class PlayOutcome(enum.Enum):
    COMPLETED = "completed"
    STOPPED = "stopped"
    """`stop()` was called (speech barge-in, a new prompt, hold, bridge)."""
    INTERRUPTED_BY_DIGIT = "interrupted_by_digit"
    """A key was pressed while `barge_in` was on."""
    CLOSED = "closed"
    """The session was closed while playing."""


@dataclass(slots=True, frozen=True)
class PlayResult:
    outcome: PlayOutcome
    played_s: float
    """Seconds of the audio that were sent before the end or the interruption."""


class HoldMode(enum.Enum):
    SILENT = "silent"
    """Send nothing while held."""
    MUSIC = "music"
    """Loop the music-on-hold clip while held."""


class MediaFailure(enum.Enum):
    """Why a call's media cannot go on (the call layer ends the call, giving this as the reason)."""

    SEND_FAILED = "send_failed"
    """No packet could be sent for `MediaEngine.send_failure_s` (every send refused by the socket)."""
    NO_MEDIA = "no_media"
    """The offer's address cannot be reached and no packet from the caller came to latch to."""
    SOCKET_CLOSED = "socket_closed"
    """The session's socket was closed under it (not by `close()`)."""


@dataclass(slots=True, frozen=True)
class MediaFailed:
    """A session's media failed for good; it is reported once, and prompts in progress fail."""

    reason: MediaFailure
    detail: str
    """One sentence for the record and the BYE's Reason text (the last error, the address offered)."""
    at: float
    """Monotonic time (the session clock) of the failure."""
