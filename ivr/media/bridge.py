"""Bridging call legs (B2BUA agent handoff): each leg's received packets are relayed to the other.

Pure wiring and transcoding; the legs do the I/O. Audio payloads are transcoded PCMU<->PCMA with a
256-byte `bytes.translate` table (one C call per packet, no decode); telephone events pass through
and each leg renumbers packets into its own stream (SSRC, sequence, timestamps).

Two additions ride on the same wiring, and cost nothing while unused (the plain two-way relay keeps
its one forwarder per leg):
- taps (`BridgeTap`, e.g. a call recording) see every packet the caller's and the agent's legs send;
- a third party (`join`) listens, whispers or barges (`SupervisorMode`): who hears whom is the table
  `_HEARS`; a party hearing one other gets that leg's packets as ever, one hearing two gets them mixed
  in the linear domain per packet (`ivr.media.mix`), timed by the first of the two.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ivr.media.g711 import G711Codec, transcode_table
from ivr.media.mix import SampleFifo, mix_payload


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
        """Stop own sending and hand every received packet to `forward` (again: a new `forward`)."""
        ...

    def stop_relay(self) -> None:
        """Stop forwarding and resume own sending (comfort silence)."""
        ...

    def send_relayed(self, packet: RelayedPacket) -> None: ...


class BridgeTap(Protocol):
    """Sees what the two parties of a bridge say (a recording)."""

    def packet(self, side: int, packet: RelayedPacket, codec: G711Codec) -> None:
        """A packet from side 0 (the leg that bridged: the caller) or 1 (the other: the agent)."""
        ...

    def closed(self) -> None:
        """The bridge closed (once); no packet follows."""
        ...


class SupervisorMode(enum.Enum):
    """What a third party on a bridge does."""

    LISTEN = "listen"
    """Hears both; nobody hears them."""
    WHISPER = "whisper"
    """Hears both; the agent (side 1) hears them, the caller does not."""
    BARGE = "barge"
    """Hears both and both hear them."""


_HEARS: dict[SupervisorMode | None, dict[int, tuple[int, ...]]] = {
    None: {0: (1,), 1: (0,)},
    SupervisorMode.LISTEN: {0: (1,), 1: (0,), 2: (0, 1)},
    SupervisorMode.WHISPER: {0: (1,), 1: (0, 2), 2: (0, 1)},
    SupervisorMode.BARGE: {0: (1, 2), 1: (0, 2), 2: (0, 1)},
}
"""For each mode, listener side -> the sides it hears (the first one times a mix)."""


def _forwarder(source: G711Codec, target: BridgeLeg) -> Forward:
    if source is target.codec:
        return target.send_relayed
    table = transcode_table(source, target.codec)
    send = target.send_relayed

    def forward(packet: RelayedPacket) -> None:
        send(packet if packet.is_event else replace(packet, payload=packet.payload.translate(table)))

    return forward


class _Mixed:
    """What one listener hears when it hears two: the primary's packets, each mixed with the other's."""

    __slots__ = ("_codec", "_target", "_fifos")

    def __init__(self, codec: G711Codec, target: BridgeLeg, secondaries: int) -> None:
        self._codec = codec
        self._target = target
        self._fifos = [SampleFifo() for _ in range(secondaries)]

    def primary(self, packet: RelayedPacket) -> None:
        if packet.is_event:
            self._target.send_relayed(packet)
            return
        payload = mix_payload(packet.payload, self._codec, self._fifos, self._target.codec)
        self._target.send_relayed(replace(packet, payload=payload))

    def secondary(self, index: int, codec: G711Codec) -> Forward:
        fifo = self._fifos[index]

        def push(packet: RelayedPacket) -> None:
            if not packet.is_event:
                fifo.push(codec.decode(packet.payload))

        return push


def _fan_out(forwards: list[Forward]) -> Forward:
    if len(forwards) == 1:
        return forwards[0]

    def forward(packet: RelayedPacket) -> None:
        for each in forwards:
            each(packet)

    return forward


def _dropped(packet: RelayedPacket) -> None:
    """A listening supervisor's own audio goes nowhere."""


class Bridge:
    """Two legs relaying to each other until `close()` (or either leg closes); a third may `join`."""

    def __init__(self, a: BridgeLeg, b: BridgeLeg) -> None:
        if a is b:
            raise ValueError("cannot bridge a media session to itself")
        self.legs = (a, b)
        self.transcoding = a.codec is not b.codec
        self.third: BridgeLeg | None = None
        self.mode: SupervisorMode | None = None
        self._taps: list[BridgeTap] = []
        self._open = True
        self._wire()

    @property
    def open(self) -> bool:
        return self._open

    def other(self, leg: BridgeLeg) -> BridgeLeg:
        return self.legs[1] if leg is self.legs[0] else self.legs[0]

    # -- taps and a third party ------------------------------------------------------------------

    def add_tap(self, tap: BridgeTap) -> Callable[[], None]:
        """`tap` sees every packet of both sides from now on; returns the call that removes it."""
        if not self._open:
            raise ValueError("the bridge is closed")
        self._taps.append(tap)
        self._wire()

        def remove() -> None:
            if tap in self._taps:
                self._taps.remove(tap)
                if self._open:
                    self._wire()

        return remove

    def join(self, leg: BridgeLeg, mode: SupervisorMode) -> None:
        """`leg` joins as the third party in `mode` (again: switch mode); `leave` or `close` ends it."""
        if not self._open:
            raise ValueError("the bridge is closed")
        if leg in self.legs or (self.third is not None and leg is not self.third):
            raise ValueError("the bridge already has a third party" if self.third else "leg is already bridged")
        self.third, self.mode = leg, mode
        self._wire()

    def leave(self) -> None:
        """The third party leaves (its own sending resumes); the two others go on as before. Idempotent."""
        third, self.third, self.mode = self.third, None, None
        if third is not None:
            third.stop_relay()
            if self._open:
                self._wire()

    def _wire(self) -> None:
        legs = (*self.legs, *((self.third,) if self.third is not None else ()))
        feeds: list[list[Forward]] = [[] for _ in legs]
        for listener, sources in _HEARS[self.mode].items():
            target = legs[listener]
            if len(sources) == 1:
                feeds[sources[0]].append(_forwarder(legs[sources[0]].codec, target))
                continue
            mixed = _Mixed(legs[sources[0]].codec, target, len(sources) - 1)
            feeds[sources[0]].append(mixed.primary)
            for index, source in enumerate(sources[1:]):
                feeds[source].append(mixed.secondary(index, legs[source].codec))
        for side, leg in enumerate(legs):
            forwards = feeds[side] or [_dropped]
            if side < 2:
                forwards = [*forwards, *(_tapped(tap, side, leg.codec) for tap in self._taps)]
            leg.start_relay(_fan_out(forwards), self)

    def release(self, leg: BridgeLeg) -> None:
        """`leg` is done with the bridge: the third party leaves, either of the two closes it."""
        if leg is self.third:
            self.leave()
        else:
            self.close()

    def close(self) -> None:
        """Unbridge: every leg goes back to its own sending; taps are told. Idempotent."""
        if self._open:
            self._open = False
            self.leave()
            for leg in self.legs:
                leg.stop_relay()
            taps, self._taps = self._taps, []
            for tap in taps:
                tap.closed()


def _tapped(tap: BridgeTap, side: int, codec: G711Codec) -> Forward:
    see = tap.packet

    def forward(packet: RelayedPacket) -> None:
        see(side, packet, codec)

    return forward


__all__ = ["Bridge", "BridgeLeg", "BridgeTap", "Forward", "RelayedPacket", "SupervisorMode"]
