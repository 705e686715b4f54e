"""A session as one leg of a bridge (`ivr.media.bridge.BridgeLeg`): its relaying state.

A leg may be one of the bridge's two parties or its third (a supervisor, `Bridge.join`); the bridge
may hand it a new forwarder at any time (`start_relay` again) when a tap or a third party comes or goes.

While bridged, the session's own sending (prompts, hold music, comfort silence) is off the media
clock and every packet received is forwarded to the other leg, which renumbers it into its own
stream and sends it on its own send path (so send errors and the confirmation rule apply as ever).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.media.bridge import Bridge, Forward, RelayedPacket
from ivr.media.g711 import G711Codec
from ivr.rtp.outbound import OutboundStream
from ivr.rtp.scheduler import SenderSlot

if TYPE_CHECKING:
    from ivr.rtp.session import MediaSession


class RelayLeg:
    __slots__ = ("session", "bridge", "forward", "_outbound", "_send", "_tick", "_slot", "_stop")

    def __init__(
        self,
        session: MediaSession,
        outbound: Callable[[], OutboundStream | None],
        send: Callable[[bytes], None],
        tick: Callable[[], int],
        slot: SenderSlot,
        stop: Callable[[], None],
    ) -> None:
        self.session = session
        self.bridge: Bridge | None = None
        self.forward: Forward | None = None
        """Set while bridged: where each received packet goes."""
        self._outbound = outbound
        self._send = send
        self._tick = tick
        self._slot = slot
        """The session's own sending on the media clock: left while bridged."""
        self._stop = stop
        """Stop the session's prompt."""

    @property
    def codec(self) -> G711Codec:
        return self.session.codec

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        self._stop()
        self._slot.leave()
        self.bridge = bridge
        self.forward = forward

    def unbridge(self) -> None:
        """Leave the bridge: the third party (a supervisor) leaves alone, either of the two closes it."""
        if self.bridge is not None:
            self.bridge.release(self)

    def stop_relay(self) -> None:
        self.bridge = None
        self.forward = None
        outbound = self._outbound()
        if outbound is not None and not self.session.closed:
            outbound.end_relay()
            self._slot.take()

    def send_relayed(self, packet: RelayedPacket) -> None:
        outbound = self._outbound()
        if outbound is None or self.session.closed:
            return
        data = outbound.relay(
            packet.payload, packet.timestamp, packet.ssrc, packet.marker, packet.is_event, self._tick()
        )
        if data is not None:
            self._send(data)
