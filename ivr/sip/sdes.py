"""SDES (RFC 4568): SRTP keys carried in SDP `a=crypto` lines, and our policy for calls we answer.

An offer asks for SRTP with an `RTP/SAVP` audio stream listing one or more `a=crypto:<tag> <suite>
inline:<base64 key+salt>[|lifetime][|MKI:length]` attributes. We answer the first one we support
(AES-CM-128 with an 80- or 32-bit tag, no MKI, no session parameters) with the same tag and suite
and a fresh random key of our own. Policy (`srtp` setting): `off` refuses RTP/SAVP (488), `optional`
takes SRTP when offered and plain RTP otherwise, `required` refuses plain RTP (488).

The keys travel in the SDP in clear: SDES protects media only when signalling is protected too
(TLS, a `tls://` listener), RFC 4568 section 8.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
from dataclasses import dataclass

from ivr.sip.errors import SdpNegotiationError
from ivr.sip.sdp import MediaDescription, SessionDescription

__all__ = ["SECURE_PROTO", "SUITES", "CryptoAttribute", "SdesAgreement", "SrtpPolicy", "answer_sdes"]

SECURE_PROTO = "RTP/SAVP"
SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""Suites we take (both: 16-byte key + 14-byte salt)."""
KEY_SALT_BYTES = 30


class SrtpPolicy(enum.StrEnum):
    """Media encryption for calls we answer."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(slots=True, frozen=True)
class CryptoAttribute:
    """One `a=crypto` value; `key` is the master key+salt, `usable` False for what we do not support."""

    tag: int
    suite: str
    key: bytes
    usable: bool = True

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute | None:
        """The attribute, or None when it is malformed (a bad line is skipped, as RFC 4568 6.1 allows)."""
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or not parts[2].startswith("inline:"):
            return None
        key_text, *key_options = parts[2].removeprefix("inline:").split("|")
        try:
            key = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            return None
        has_mki = any(":" in option for option in key_options)
        usable = parts[1] in SUITES and len(key) == KEY_SALT_BYTES and not has_mki and len(parts) == 3
        return cls(int(parts[0]), parts[1], key, usable)

    def __str__(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode('ascii')}"


@dataclass(slots=True, frozen=True)
class SdesAgreement:
    """What an SDES answer settled: the suite, our key (sent in the answer) and the peer's."""

    suite: str
    local_key: bytes
    remote_key: bytes

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"SdesAgreement(suite={self.suite!r})"


def _accepted_stream(offer: SessionDescription, answer: SessionDescription
                     ) -> tuple[MediaDescription, MediaDescription]:
    """The audio stream our answer accepted (port not 0) and the offered stream it answers."""
    for offered, answered in zip(offer.media, answer.media, strict=True):
        if answered.media == "audio" and answered.port != 0:
            return offered, answered
    raise SdpNegotiationError("no audio stream accepted")


def answer_sdes(offer: SessionDescription, answer: SessionDescription, policy: SrtpPolicy) -> SdesAgreement | None:
    """Apply `policy` to the stream `answer` (from `answer_offer`) accepted: SRTP adds our `a=crypto`
    to it and returns the keys; plain RTP returns None. Raises SdpNegotiationError (488) when the
    policy refuses the offer or no offered crypto suite is one we take."""
    offered, answered = _accepted_stream(offer, answer)
    if offered.proto.upper() != SECURE_PROTO:
        if policy is SrtpPolicy.REQUIRED:
            raise SdpNegotiationError(f"media encryption required: offer {offered.proto} has no SRTP ({SECURE_PROTO})")
        return None
    if policy is SrtpPolicy.OFF:
        raise SdpNegotiationError(f"{SECURE_PROTO} offered and SRTP is off")
    cryptos = [c for c in (CryptoAttribute.parse(v or "") for n, v in offered.attributes if n == "crypto")
               if c is not None and c.usable]
    if not cryptos:
        raise SdpNegotiationError(f"no SRTP crypto suite in common: we take {', '.join(SUITES)} (no MKI)")
    chosen = cryptos[0]  # the offerer lists its preference first
    local_key = os.urandom(KEY_SALT_BYTES)
    answered.proto = SECURE_PROTO
    answered.attributes.append(("crypto", str(CryptoAttribute(chosen.tag, chosen.suite, local_key))))
    return SdesAgreement(chosen.suite, local_key, chosen.key)
