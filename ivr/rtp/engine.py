"""The media engine of a process: one scheduler (media clock), one port range, every open session.

The call layer keeps one `MediaEngine` and asks it for a `MediaSession` per call leg; the
session's `local_port` goes into the SDP answer or offer.
"""

from __future__ import annotations

import asyncio
import errno
import socket

import structlog

from ivr.clock import Clock, LoopClock
from ivr.media.g711 import G711Codec
from ivr.media.tones import music_on_hold
from ivr.rtp.errors import PortsExhausted
from ivr.rtp.jitter import JitterConfig
from ivr.rtp.outbound import EncodedAudio
from ivr.rtp.ports import PortAllocator
from ivr.rtp.scheduler import MediaScheduler
from ivr.rtp.session import MediaSession, _Endpoint

log = structlog.get_logger(__name__)

_SOCKET_BUFFER_BYTES = 256 * 1024


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
        cname: str | None = None,
    ) -> None:
        self.host = host
        self.ports = PortAllocator(port_first, port_last)
        self.clock: Clock = clock or LoopClock()
        self.scheduler = scheduler or MediaScheduler()
        self.jitter_config = jitter_config or JitterConfig()
        self.idle_silence = idle_silence
        """Send comfort silence when nothing plays (see `ivr.rtp.outbound`)."""
        self.cname = cname or f"ivr@{socket.gethostname()}"
        self._sessions: dict[int, MediaSession] = {}
        self._hold_music: dict[str, EncodedAudio] = {}

    @property
    def sessions(self) -> list[MediaSession]:
        return list(self._sessions.values())

    async def open_session(self, *, call_id: str | None = None) -> MediaSession:
        """Bind an even RTP port and the RTCP port above it; `PortsExhausted` if the range is full."""
        loop = asyncio.get_running_loop()
        for _ in range(self.ports.capacity):
            port = self.ports.acquire()
            try:
                rtp, rtp_endpoint = await self._bind(loop, port)
            except OSError as exc:
                self.ports.release(port)
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            try:
                rtcp, rtcp_endpoint = await self._bind(loop, port + 1)
            except OSError as exc:
                rtp.close()
                self.ports.release(port)
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            session = MediaSession(
                self,
                local=(self.host, port),
                rtp=rtp,
                rtcp=rtcp,
                rtp_endpoint=rtp_endpoint,
                rtcp_endpoint=rtcp_endpoint,
                call_id=call_id,
            )
            self._sessions[port] = session
            log.info("rtp_session_opened", call_id=call_id, local_port=port)
            return session
        raise PortsExhausted(f"every RTP port pair in {self.ports.first}-{self.ports.last} is taken")

    async def _bind(
        self, loop: asyncio.AbstractEventLoop, port: int
    ) -> tuple[asyncio.DatagramTransport, _Endpoint]:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER_BYTES)
            sock.bind((self.host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        endpoint = _Endpoint(lambda data, addr: None)
        transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
        return transport, endpoint

    def release(self, session: MediaSession) -> None:
        """Close a session and free its ports: the same as `session.close()`. Idempotent."""
        session.close()

    def _forget(self, session: MediaSession) -> None:
        """Called by a session as it closes."""
        if self._sessions.get(session.local_port) is session:
            del self._sessions[session.local_port]
            self.ports.release(session.local_port)

    def hold_music(self, codec: G711Codec) -> EncodedAudio:
        """The music-on-hold loop, encoded once per codec and shared by every held call."""
        encoded = self._hold_music.get(codec.name)
        if encoded is None:
            encoded = self._hold_music[codec.name] = EncodedAudio(codec, codec.encode_frames(music_on_hold()))
        return encoded

    def close(self) -> None:
        for session in list(self._sessions.values()):
            session.close()
        self.scheduler.close()
