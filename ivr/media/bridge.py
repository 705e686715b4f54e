"""Bridging two call legs (B2BUA agent handoff): each leg's received packets are relayed to the other.

Pure wiring and transcoding; the legs do the I/O. Audio payloads are transcoded PCMU<->PCMA with a
256-byte `bytes.translate` table (one C call per packet, no decode); telephone events pass through
and each leg renumbers packets into its own stream (SSRC, sequence, timestamps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ivr.media.g711 import G711Codec, transcode_table


@dataclass(slots=True, frozen=True)
class RelayedPacket:
    """An RTP packet taken from one leg for the other."""

    payload: bytes
    timestamp: int
    ssrc: int
    marker: bool
    is_event: bool
    """A telephone-event packet (relayed as is) rather than audio (transcoded if the codecs differ)."""


Forward = Callable[[RelayedPacket], None]


class BridgeLeg(Protocol):
    """What a media session offers to a bridge."""

    @property
    def codec(self) -> G711Codec: ...

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        """Stop own sending and hand every received packet to `forward`."""
        ...

    def stop_relay(self) -> None:
        """Stop forwarding and resume own sending (comfort silence)."""
        ...

    def send_relayed(self, packet: RelayedPacket) -> None: ...


def _forwarder(source: G711Codec, target: BridgeLeg) -> Forward:
    if source is target.codec:
        return target.send_relayed
    table = transcode_table(source, target.codec)
    send = target.send_relayed

    def forward(packet: RelayedPacket) -> None:
        send(packet if packet.is_event else replace(packet, payload=packet.payload.translate(table)))

    return forward


class Bridge:
    """Two legs relaying to each other until `close()` (or either leg closes)."""

    def __init__(self, a: BridgeLeg, b: BridgeLeg) -> None:
        if a is b:
            raise ValueError("cannot bridge a media session to itself")
        self.legs = (a, b)
        self.transcoding = a.codec is not b.codec
        self._open = True
        a.start_relay(_forwarder(a.codec, b), self)
        b.start_relay(_forwarder(b.codec, a), self)

    @property
    def open(self) -> bool:
        return self._open

    def other(self, leg: BridgeLeg) -> BridgeLeg:
        return self.legs[1] if leg is self.legs[0] else self.legs[0]

    def close(self) -> None:
        """Unbridge: both legs go back to their own sending. Idempotent."""
        if self._open:
            self._open = False
            for leg in self.legs:
                leg.stop_relay()
