"""The media engine of a process: one scheduler (media clock), one port range, every open session.

The call layer keeps one `MediaEngine` and asks it for a `MediaSession` per call leg; the
session's `local_port` goes into the SDP answer or offer. `counters` are the process's media totals
for `/metrics` (read them at scrape time). Time and sockets are injected: `clock` (the scheduler's
too, unless one is given) and `network` (`UdpNetwork` by default; `ivr.testing.rtpprobe.MemoryNetwork`
in tests), so a `FakeClock` drives a call's media with no real waiting and no sockets.
"""

from __future__ import annotations

import errno
import socket

import structlog

from ivr.clock import Clock, LoopClock
from ivr.media.g711 import G711Codec
from ivr.media.tones import music_on_hold
from ivr.rtp.address import Address
from ivr.rtp.errors import PortsExhausted
from ivr.rtp.health import MediaCounters
from ivr.rtp.jitter import JitterConfig
from ivr.rtp.net import DatagramNetwork, DatagramPort, UdpNetwork
from ivr.rtp.outbound import EncodedAudio
from ivr.rtp.playback import EncodedClips
from ivr.rtp.ports import PortAllocator
from ivr.rtp.recycling import SocketPair, SocketRecycler
from ivr.rtp.scheduler import MediaScheduler
from ivr.rtp.session import MediaSession

log = structlog.get_logger(__name__)

SEND_FAILURE_S = 5.0
"""A session that could not send one packet for this long reports `MediaFailed(SEND_FAILED)`."""
KEEPALIVE_S = 1.0
"""With `idle_silence=False`: one silence packet this often while nothing plays (`ivr.rtp.outbound`). At most
1 s: a receiver built like ours fills a timestamp gap with silence up to one second (`ivr.rtp.inbound`), so a
recording of what we sent keeps its length; NAT bindings and RTP-timeout timers want one every tens of seconds."""


class MediaEngine:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_first: int = 10000,
        port_last: int = 20000,
        clock: Clock | None = None,
        scheduler: MediaScheduler | None = None,
        jitter_config: JitterConfig | None = None,
        idle_silence: bool = True,
        keepalive_s: float = KEEPALIVE_S,
        cname: str | None = None,
        network: DatagramNetwork | None = None,
        send_failure_s: float = SEND_FAILURE_S,
    ) -> None:
        self.host = host
        self.ports = PortAllocator(port_first, port_last)
        self.clock: Clock = clock or (scheduler.time if scheduler is not None else LoopClock())
        self.scheduler = scheduler or MediaScheduler(self.clock)
        self.network: DatagramNetwork = network or UdpNetwork()
        self.send_failure_s = send_failure_s
        self.counters = MediaCounters()
        """Totals over every session, for `/metrics` (see `ivr.rtp.health.MediaCounters`)."""
        self.jitter_config = jitter_config or JitterConfig()
        self.idle_silence = idle_silence
        """Send comfort silence when nothing plays; false: a keep-alive every `keepalive_s` (`ivr.rtp.outbound`)."""
        if not 0 < keepalive_s <= 1.0:
            raise ValueError(f"keepalive_s {keepalive_s} is not more than 0 and at most 1 s")
        self.keepalive_ticks = max(1, round(keepalive_s / self.scheduler.period_s))
        """`keepalive_s` in media ticks."""
        self.cname = cname or f"ivr@{socket.gethostname()}"
        self._sessions: dict[int, MediaSession] = {}
        self._recycler = SocketRecycler(self.ports.release)
        """Closed sessions' socket pairs, drained a moment and handed to new sessions (`ivr.rtp.recycling`)."""
        self._closing = False
        self._hold_music: dict[str, EncodedAudio] = {}
        self.clips = EncodedClips()
        """Prompts encoded once per codec for every session that plays them (see `EncodedClips`)."""

    @property
    def sessions(self) -> list[MediaSession]:
        return list(self._sessions.values())

    async def open_session(self, *, call_id: str | None = None) -> MediaSession:
        """A random even RTP port and the RTCP port above it: a closed session's pair that has drained
        (`ivr.rtp.recycling`), else bound now; `PortsExhausted` if the range is full."""
        recycled = self._recycler.take(self.clock.now())
        if recycled is not None:
            return self._opened(recycled.port, recycled.rtp, recycled.rtcp, call_id, stale=recycled.stale)
        for _ in range(self.ports.capacity):
            try:
                port = self.ports.acquire()
            except PortsExhausted:
                if not self._recycler.close_oldest():  # waiting pairs hold numbers a new bind may take
                    raise
                continue
            try:
                rtp = await self.network.bind(self.host, port)
            except OSError as exc:
                self.ports.release(port)
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            try:
                rtcp = await self.network.bind(self.host, port + 1)
            except OSError as exc:
                rtp.close()
                self.ports.release(port)
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            return self._opened(port, rtp, rtcp, call_id)
        raise PortsExhausted(f"every RTP port pair in {self.ports.first}-{self.ports.last} is taken")

    def _opened(
        self, port: int, rtp: DatagramPort, rtcp: DatagramPort, call_id: str | None, *, stale: Address | None = None
    ) -> MediaSession:
        session = MediaSession(self, local=(self.host, port), rtp=rtp, rtcp=rtcp, call_id=call_id, stale=stale)
        self._sessions[port] = session
        log.info("rtp_session_opened", call_id=call_id, local_port=port)
        return session

    def release(self, session: MediaSession) -> None:
        """Close a session and free its ports: the same as `session.close()`. Idempotent."""
        session.close()

    def _forget(self, session: MediaSession, sockets: tuple[DatagramPort, DatagramPort] | None) -> None:
        """Called by a session as it closes, with its sockets when they may serve another session (None:
        it closed them, e.g. after its media failed)."""
        registered = self._sessions.get(session.local_port) is session
        if registered:
            del self._sessions[session.local_port]
        if sockets is not None and registered and not self._closing:
            stale = session.inbound.gate.source if session.inbound is not None else None
            self._recycler.give(SocketPair(session.local_port, *sockets, stale=stale), self.clock.now())
            return
        for sock in sockets or ():
            sock.close()
        if registered:
            self.ports.release(session.local_port)

    def hold_music(self, codec: G711Codec) -> EncodedAudio:
        """The music-on-hold loop, encoded once per codec and shared by every held call."""
        encoded = self._hold_music.get(codec.name)
        if encoded is None:
            encoded = self._hold_music[codec.name] = EncodedAudio(codec, codec.encode_frames(music_on_hold()))
        return encoded

    def close(self) -> None:
        self._closing = True
        for session in list(self._sessions.values()):
            session.close()
        self._recycler.close()
        self.scheduler.close()
