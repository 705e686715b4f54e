"""A session's part in bridges: joining another session's media, leaving, and who it is bridged to.

`MediaSession.bridging` is the call layer's handle: `bridge(other)` relays RTP between the two
sessions (transcoding when their codecs differ), `unbridge()` leaves, `bridged_to` names the other
party, and `leg` is the session as a bridge leg (`RelayLeg`), which a third party joins with
(`Bridge.join`). While bridged, the session's own sending (prompts, hold music) is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ivr.media.bridge import Bridge
from ivr.rtp.relay import RelayLeg

if TYPE_CHECKING:
    from ivr.rtp.session import MediaSession


class Bridging:
    __slots__ = ("leg", "_log")

    def __init__(self, leg: RelayLeg, logger: structlog.typing.FilteringBoundLogger) -> None:
        self.leg = leg
        """This session as a bridge leg (to join a bridge as its third party: `Bridge.join`)."""
        self._log = logger

    @property
    def active(self) -> bool:
        """True while the session is in a bridge (its own sending is off)."""
        return self.leg.bridge is not None

    def bridge(self, other: MediaSession) -> Bridge:
        """Relay RTP between this session and `other` (transcoding if their codecs differ) until unbridged.

        Both must be started and open; either's previous bridge ends and either on hold is taken off it.
        """
        pair = (self.leg.session, other)
        for session in pair:
            session._check_open()
            session._streams()
        for session in pair:
            session.bridging.unbridge()
            if session.held is not None:
                session.unhold()
        bridge = Bridge(self.leg, other.bridging.leg)
        self._log.info("media_bridged", other_port=other.local_port, transcoding=bridge.transcoding)
        return bridge

    def unbridge(self) -> None:
        """Leave the bridge: the third party (a supervisor) leaves alone, either of the two closes it."""
        self.leg.unbridge()

    @property
    def bridged_to(self) -> MediaSession | None:
        bridge = self.leg.bridge
        if bridge is None:
            return None
        other = bridge.other(self.leg)
        assert isinstance(other, RelayLeg)
        return other.session
