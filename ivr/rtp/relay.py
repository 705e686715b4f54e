"""A session as one leg of a bridge (`ivr.media.bridge.BridgeLeg`): its relaying state.

A leg may be one of the bridge's two parties or its third (a supervisor, `Bridge.join`); the bridge
may hand it a new forwarder at any time (`start_relay` again) when a tap or a third party comes or goes.

While bridged, the session's own sending (prompts, hold music, comfort silence) is off the media
clock and every packet received is forwarded to the other leg, which renumbers it into its own
stream and sends it on its own send path (so send errors and the confirmation rule apply as ever).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.media.bridge import Bridge, Forward, RelayedPacket
from ivr.media.g711 import G711Codec
from ivr.rtp.scheduler import SenderSlot

if TYPE_CHECKING:
    from ivr.rtp.session import MediaSession


class RelayLeg:
    __slots__ = ("_session", "bridge", "forward", "_send", "_tick", "_slot")

    def __init__(
        self,
        session: MediaSession,
        send: Callable[[bytes], None],
        tick: Callable[[], int],
        slot: SenderSlot,
    ) -> None:
        self._session = weakref.ref(session)
        """Weak: the session holds this leg, so the pair is freed by reference counting (issue 22)."""
        self.bridge: Bridge | None = None
        self.forward: Forward | None = None
        """Set while bridged: where each received packet goes."""
        self._send = send
        self._tick = tick
        self._slot = slot
        """The session's own sending on the media clock: left while bridged."""

    @property
    def session(self) -> MediaSession:
        session = self._session()
        if session is None:  # only the session hands its leg out, and a bridge lets it go as it closes
            raise ReferenceError("the media session of this bridge leg is gone")
        return session

    @property
    def codec(self) -> G711Codec:
        return self.session.codec

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        self.session.stop()  # its prompt
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
        session = self._session()
        outbound = session.outbound if session is not None else None
        if outbound is not None and session is not None and not session.closed:
            outbound.end_relay()
            self._slot.take()

    def send_relayed(self, packet: RelayedPacket) -> None:
        session = self._session()
        outbound = session.outbound if session is not None else None
        if outbound is None or session is None or session.closed:
            return
        data = outbound.relay(
            packet.payload, packet.timestamp, packet.ssrc, packet.marker, packet.is_event, self._tick()
        )
        if data is not None:
            self._send(data)
