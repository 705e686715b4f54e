"""SRTP (RFC 3711) for a media session: packets protected on the way out, checked and decrypted on the way in.

The keys come from SDP (SDES, RFC 4568: `ivr.sip.sdes` negotiates them), one master key+salt per
direction: ours protects what we send, the peer's unprotects what we receive. libsrtp (through
`pylibsrtp`) does the cryptography; `SecuredPort` puts it between a session and its socket, so the
session's RTP, RTCP and rtcp-mux paths stay as they are: before keys are set it passes datagrams
through, once `secure(...)` is called every datagram is protected or checked. A datagram that fails
authentication or replay checks is dropped and counted (`MediaCounters.srtp_rejected`), never
played: a stranger who guessed our port cannot inject audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

from ivr.rtp.address import Address
from ivr.rtp.health import MediaCounters
from ivr.rtp.net import DatagramPort, ErrorListener, LostListener, Receiver
from ivr.rtp.packet import is_rtcp

__all__ = ["SRTP_PROFILES", "SecuredPort", "SrtpKeys", "SrtpTransform"]

SRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
"""The SDES crypto suites we take (RFC 4568 6.2.1/6.2.2), by their SDP names; 30-byte key+salt each."""


@dataclass(slots=True, frozen=True)
class SrtpKeys:
    """What SDES settled for one call: the suite, and the master key+salt of each direction."""

    suite: str
    local_key: bytes
    """Protects what we send (the key our SDP gave the peer)."""
    remote_key: bytes
    """Checks what we receive (the key the peer's SDP gave us)."""

    def __post_init__(self) -> None:
        if self.suite not in SRTP_PROFILES:
            raise ValueError(f"SRTP suite {self.suite!r} is not one of {', '.join(SRTP_PROFILES)}")

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"SrtpKeys(suite={self.suite!r})"


class SrtpTransform:
    """The two libsrtp contexts of one call: outbound (our key) and inbound (the peer's)."""

    def __init__(self, keys: SrtpKeys) -> None:
        profile = SRTP_PROFILES[keys.suite]
        self.keys = keys
        self._out = pylibsrtp.Session(pylibsrtp.Policy(
            key=keys.local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        self._in = pylibsrtp.Session(pylibsrtp.Policy(
            key=keys.remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile))

    def protect(self, data: bytes) -> bytes:
        """SRTP or SRTCP (told apart by packet type, as rtcp-mux does) of one plain datagram."""
        return self._out.protect_rtcp(data) if is_rtcp(data) else self._out.protect(data)

    def unprotect(self, data: bytes) -> bytes | None:
        """The plain datagram, or None when it fails authentication, replay or parsing."""
        try:
            return self._in.unprotect_rtcp(data) if is_rtcp(data) else self._in.unprotect(data)
        except pylibsrtp.Error:
            return None


class SecuredPort:
    """A `DatagramPort` that protects and checks datagrams once `secure()` gave it keys.

    Plain, it is not in the way: the socket delivers straight to the session's receiver and `sendto` is the
    socket's own (a Python call less per packet each way, issue 22); `secure()` puts the transform between them.
    """

    sendto: Callable[[bytes, Address], None]
    """Send one datagram, protected once keys are set (see `DatagramPort.sendto`)."""

    def __init__(self, inner: DatagramPort, counters: MediaCounters) -> None:
        self._inner = inner
        self._counters = counters
        self.transform: SrtpTransform | None = None
        self.sendto = inner.sendto
        self._attached: tuple[Receiver, ErrorListener, LostListener] | None = None

    def secure(self, keys: SrtpKeys | None) -> None:
        """Protect with `keys` from now on (None: plain RTP). The same keys again keep the contexts,
        so a re-INVITE that repeats them does not reset SRTP's rollover and replay state."""
        if keys is None:
            self.transform = None
        elif self.transform is None or self.transform.keys != keys:
            self.transform = SrtpTransform(keys)
        self._wire()

    def attach(self, receiver: Receiver, on_error: ErrorListener, on_lost: LostListener) -> None:
        self._attached = (receiver, on_error, on_lost)
        self._wire()

    def _wire(self) -> None:
        """Join the socket and the session: directly while plain, through the transform once secured."""
        secured = self.transform is not None
        self.sendto = self._protected_sendto if secured else self._inner.sendto
        if self._attached is not None:
            receiver, on_error, on_lost = self._attached
            self._inner.attach(self._checked(receiver) if secured else receiver, on_error, on_lost)

    def _checked(self, receiver: Receiver) -> Receiver:
        def received(data: bytes, source: Address) -> None:
            transform = self.transform
            if transform is None:
                receiver(data, source)
                return
            plain = transform.unprotect(data)
            if plain is None:
                self._counters.srtp_rejected += 1
                return
            receiver(plain, source)

        return received

    def _protected_sendto(self, data: bytes, address: Address) -> None:
        transform = self.transform
        self._inner.sendto(transform.protect(data) if transform is not None else data, address)

    def release(self) -> None:
        """The session closed: let go of its callbacks (the socket itself goes back to the engine), so the
        session is freed by reference counting (issue 22)."""
        self._attached = None

    def close(self) -> None:
        self._attached = None
        self._inner.close()
