"""Where one session's RTP goes, when it may go, and what a refused send does.

The target is the latched source in NAT mode, else the SDP's address when our socket can reach it,
else nobody until the caller's packets show where it is (an IPv6 offer to an IPv4 socket). Nothing
is sent before the peer is confirmed (the ACK, or its first packet). A refused send is counted and
logged sparingly (`SendHealth`); `on_failed` is called once when the stream has sent nothing for
`SendHealth.fail_after_s`, or when an unreachable offer's latch window passed with no packet.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ivr.clock import Clock
from ivr.rtp.address import Address, can_reach, is_unspecified
from ivr.rtp.events import MediaFailure
from ivr.rtp.gate import SourceGate
from ivr.rtp.health import MediaCounters, SendHealth
from ivr.rtp.net import DatagramPort
from ivr.rtp.params import MediaParams

FailureListener = Callable[[MediaFailure, str], None]


def _ignore_failure(reason: MediaFailure, detail: str) -> None:
    pass


class SendPath:
    __slots__ = (
        "target",
        "send_to",
        "confirmed",
        "health",
        "_port",
        "_local_host",
        "_clock",
        "_counters",
        "_on_failed",
        "_log",
        "_gate",
        "_remote",
        "_gave_up",
    )

    def __init__(
        self,
        port: DatagramPort,
        local_host: str,
        clock: Clock,
        counters: MediaCounters,
        health: SendHealth,
        on_failed: FailureListener,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.target: Address | None = None
        """Where RTP goes once it may: the latched source, the SDP address, or None (not reachable)."""
        self.send_to: Address | None = None
        """`target` once the peer is confirmed, else None: what the hot path reads."""
        self.confirmed = False
        self.health = health
        self._port = port
        self._local_host = local_host
        self._clock = clock
        self._counters = counters
        self._on_failed = on_failed
        self._log = logger
        self._gate: SourceGate | None = None
        self._remote: Address | None = None
        self._gave_up = False

    def aim(self, params: MediaParams, gate: SourceGate) -> Address | None:
        """Recompute the target from the negotiated parameters and what the gate latched to."""
        self._gate, self._remote = gate, params.remote
        self.confirmed = self.confirmed or params.confirmed or gate.source is not None
        if gate.source is not None and params.symmetric:
            self.target = gate.source
        elif can_reach(self._local_host, params.remote[0]):
            self.target = params.remote
        else:
            self.target = None
        self.send_to = self.target if self.confirmed else None
        return self.target

    def confirm(self) -> None:
        self.confirmed = True
        self.send_to = self.target

    def send(self, data: bytes) -> None:
        target = self.send_to
        if target is None:
            self.check_waiting()
            return
        health = self.health
        errors = health.errors
        try:
            self._port.sendto(data, target)
        except (OSError, ValueError) as exc:  # uvloop raises ValueError for the wrong address family
            self.error(exc)
            return
        if health.failing_since is not None and health.errors == errors:  # errors may come via error_received
            health.sent()

    def error(self, exc: Exception) -> None:
        """The socket refused a datagram (raised from `sendto` or reported through `error_received`)."""
        self._counters.send_errors += 1
        note = self.health.failed(self._clock.now())
        if note.log:
            self._log.warning(
                "rtp_send_failed",
                error=str(exc) or type(exc).__name__,
                target=self.send_to,
                errors=self.health.errors,
                not_logged=note.suppressed,
                failing_for_s=round(note.failing_for_s, 2),
            )
        if note.fatal and not self._gave_up:
            self._gave_up = True
            self._on_failed(
                MediaFailure.SEND_FAILED,
                f"no RTP could be sent to {self.send_to} for {note.failing_for_s:.1f} s: {exc}",
            )

    def release(self) -> None:
        """The session closed: report no failure to it any more (and hold no reference back to it)."""
        self._gave_up = True
        self._on_failed = _ignore_failure

    def check_waiting(self) -> None:
        """Nothing to send to yet: an unreachable offer fails once its latch window is over."""
        gate, remote = self._gate, self._remote
        if self.target is not None or gate is None or gate.source is not None or self._gave_up:
            return
        if remote is None or is_unspecified(remote[0]):  # c=0.0.0.0: on hold (RFC 3264 8.4), not broken
            return
        if self._clock.now() > gate.latch_until:
            self._gave_up = True
            self._on_failed(
                MediaFailure.NO_MEDIA,
                f"no RTP came from the caller, and its media address {self._remote} "
                f"cannot be reached from {self._local_host}",
            )
