"""Media counters and send-error bookkeeping, pure.

A send error is a fact about one packet (a full buffer, a route that comes back, a family mismatch
until symmetric RTP finds the caller): it is counted and logged sparingly, and the stream goes on.
Only a stream that has not sent one packet for `fail_after_s` is failed, and then the call layer
ends the call with a reason. Issue 24: dropping a call's sender at its first error left the caller
in silence for the rest of the call, and logging every error of 50 a second drowns the log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class MediaCounters:
    """Monotonic counts for `/metrics`, one object shared by every session of a `MediaEngine`."""

    received: int = 0
    """RTP packets accepted."""
    malformed: int = 0
    wrong_source: int = 0
    """RTP packets from an address the stream does not accept (strangers, after latching)."""
    unknown_payload_type: int = 0
    oversize: int = 0
    """RTP or RTCP datagrams over the size cap, dropped unread."""
    rtcp_dropped: int = 0
    """RTCP datagrams refused: wrong source or malformed."""
    send_errors: int = 0
    """RTP/RTCP datagrams the socket refused to send."""
    media_failures: int = 0
    """Sessions that reported `MediaFailed` (the call layer ends those calls)."""
    srtp_rejected: int = 0
    """SRTP/SRTCP datagrams that failed authentication or replay checks, dropped unplayed."""


@dataclass(slots=True, frozen=True)
class SendErrorNote:
    """What to do about one send error."""

    log: bool
    """Log this one (the first, then at most one per `log_every_s`)."""
    suppressed: int
    """Errors since the last logged one that were not logged."""
    failing_for_s: float
    """How long no packet of the stream could be sent."""
    fatal: bool
    """`failing_for_s` reached the limit: the stream's media has failed."""


@dataclass(slots=True)
class SendHealth:
    """Send errors of one stream."""

    fail_after_s: float = 5.0
    log_every_s: float = 5.0
    errors: int = 0
    failing_since: float | None = None
    """When the current run of failed sends began; None while packets go out."""
    _logged_at: float | None = None
    _since_log: int = 0

    def sent(self) -> None:
        """A packet went out: any run of failures is over."""
        self.failing_since = None

    def failed(self, now: float) -> SendErrorNote:
        self.errors += 1
        self._since_log += 1
        if self.failing_since is None:
            self.failing_since = now
        log = self._logged_at is None or now - self._logged_at >= self.log_every_s
        suppressed = 0
        if log:
            suppressed, self._since_log, self._logged_at = self._since_log - 1, 0, now
        failing_for_s = now - self.failing_since
        return SendErrorNote(log, suppressed, failing_for_s, failing_for_s >= self.fail_after_s)
