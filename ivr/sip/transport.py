"""The asyncio adapter for SIP: the only module here that opens sockets or arms timers.

`SipTransport` is thin, in the manner of aioquic's asyncio protocol: on each datagram (or framed TCP
message) it calls into the pure `SipEndpoint`, hands the endpoint's events to one handler (the user
agent), sends whatever the endpoint queued, and re-arms a single timer for the endpoint's nearest
deadline. No timer per retransmission, no polling.

Time is the loop's (`loop.call_at`) unless a `Clock` is given: then `now` is `clock.now()` and the one
timer is `clock.call_at`, so with `ivr.clock.FakeClock` every SIP timer moves only when the test
advances the clock. `SipTransport.attach(...)` makes one with no socket at all: what it sends goes to
a callable, what it receives is fed to `deliver` (see `ivr.testing.sipharness.MemoryNetwork`).

UDP answers go to the address the request came from (RFC 3581), so SIPp or a trunk is answered
directly. TCP frames by Content-Length (`StreamFramer`), keeps one connection per peer address and
opens one on demand for requests we originate; a refused connect fails its transactions at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import structlog

from ivr.clock import Clock, TimerHandle
from ivr.sip.endpoint import SipEndpoint, TransportKind
from ivr.sip.errors import SipParseError
from ivr.sip.events import Address, EndpointEvent, MessageRejected
from ivr.sip.framing import StreamFramer
from ivr.sip.transaction import DEFAULT_TIMERS, TimerConfig

__all__ = ["SipTransport", "TransportKind", "UDP_BUFFER_BYTES", "run"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
UDP_BUFFER_BYTES = 4 * 1024 * 1024
SHARED_PEERS_MAX = 65536
"""Peers remembered as having come through the shared port (`share_port`)."""
EventHandler = Callable[[EndpointEvent], None]


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


class SipTransport:
    """One listening socket (UDP) or listener (TCP) with its SIP endpoint and its one timer."""

    def __init__(self, kind: TransportKind, loop: asyncio.AbstractEventLoop, *,
                 timers: TimerConfig = DEFAULT_TIMERS, clock: Clock | None = None) -> None:
        self.kind = kind
        self.endpoint = SipEndpoint(transport=kind, timers=timers)
        self._loop = loop
        self._clock = clock
        self._handler: EventHandler = _ignore
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.base_events.Server | None = None
        self._sink: Callable[[bytes, Address], None] | None = None
        self._connections: dict[Address, _TcpConnection] = {}
        self._connecting: dict[Address, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_ssl: ssl_module.SSLContext | None = None
        self._udp_v6 = False
        """A dual-stack socket (bound to `::`): IPv4 peers must be addressed in their ::ffff: form."""
        self._shared: asyncio.DatagramTransport | None = None
        self._shared_peers: dict[Address, None] = {}
        """Peers whose last datagram came through the shared port (`share_port`), oldest first."""
        self.before_message: Callable[[], None] | None = None
        """Called before each message is handled (the engine runs a due media tick there: media first)."""
        self.route: Callable[[bytes, Address], bool] | None = None
        """Sees each datagram of the shared port first; True: it took it (a worker of a node forwards what
        another worker holds: `ivr.workers.mesh`)."""
        self._shared_sends = False

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0, *, kind: TransportKind = TransportKind.UDP,
                   timers: TimerConfig = DEFAULT_TIMERS, clock: Clock | None = None,
                   ssl: ssl_module.SSLContext | None = None,
                   client_ssl: ssl_module.SSLContext | None = None) -> SipTransport:
        """Bind `host:port` (port 0: an ephemeral port; read `local_address`). TLS (`ivr.sip.tls`): `ssl`
        is the listener's server context, `client_ssl` that of connections we open."""
        loop = asyncio.get_running_loop()
        self = cls(kind, loop, timers=timers, clock=clock)
        self._client_ssl = client_ssl
        if kind is TransportKind.UDP:
            udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
            self._udp = udp
            sock = udp.get_extra_info("socket")
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):  # ride out bursts (capped by the kernel)
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
            sockname = udp.get_extra_info("sockname")
            self._udp_v6 = sock.family == socket.AF_INET6
        else:
            self._server = await loop.create_server(lambda: _TcpConnection(self, None), host, port, ssl=ssl)
            sockname = self._server.sockets[0].getsockname()
        self.endpoint.local_address = (sockname[0], sockname[1])
        log.info("sip_transport_listening", transport=kind.value, host=sockname[0], port=sockname[1])
        return self

    @classmethod
    def attach(cls, local_address: Address, send: Callable[[bytes, Address], None], *, clock: Clock,
               kind: TransportKind = TransportKind.UDP, timers: TimerConfig = DEFAULT_TIMERS) -> SipTransport:
        """A transport with no socket: datagrams go to `send`, arrive through `deliver`, time is `clock`'s."""
        self = cls(kind, asyncio.get_running_loop(), timers=timers, clock=clock)
        self.endpoint.local_address = local_address
        self._sink = send
        return self

    # -- what the user agent calls --------------------------------------------------------------------

    @property
    def local_address(self) -> Address:
        return self.endpoint.local_address

    @property
    def reliable(self) -> bool:
        return self.kind is not TransportKind.UDP

    def set_handler(self, handler: EventHandler) -> None:
        """Where endpoint events go (the user agent's dispatcher); called synchronously, must not block."""
        self._handler = handler

    def now(self) -> float:
        return self._clock.now() if self._clock is not None else self._loop.time()

    async def close(self) -> None:
        self._cancel_timer()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._connections.values()):
            conn.close()
        if self._udp is not None:
            self._udp.close()
        if self._shared is not None:
            self._shared.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def share_port(self, host: str, port: int, *, sends: bool = False) -> None:
        """Also receive on `host:port`, bound with SO_REUSEPORT by every worker of the node (`ivr serve
        --workers`): the kernel spreads new peers over the workers by address, so one peer's requests
        (an INVITE, its retransmissions, its CANCEL) reach one worker. A response to a peer whose last
        datagram came through it leaves from it (RFC 3581); requests we send leave from our own port,
        the one in Via and Contact, so their responses and in-dialog requests come back to this worker.
        `sends`: everything leaves from the shared port instead (the node's one address; `route`)."""
        udp, _ = await self._loop.create_datagram_endpoint(lambda: _UdpProtocol(self, shared=True),
                                                           local_addr=(host, port), reuse_port=True)
        udp.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER_BYTES)
        self._shared = udp
        self._shared_sends = sends

    def _came_in(self, source: Address, shared: bool) -> None:
        """Remember which port a peer last used (bounded: the oldest peer is forgotten first)."""
        if shared:
            self._shared_peers.pop(source, None)
            self._shared_peers[source] = None
            if len(self._shared_peers) > SHARED_PEERS_MAX:
                del self._shared_peers[next(iter(self._shared_peers))]
        elif self._shared_peers:
            self._shared_peers.pop(source, None)

    # -- input from sockets and the timer -------------------------------------------------------------

    def deliver(self, data: bytes, source: Address) -> None:
        """One datagram / framed message arrived."""
        if self.before_message is not None:
            self.before_message()
        self.endpoint.receive_datagram(data, source, self.now())
        self._dispatch()
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.endpoint.handle_timer(self.now())
        self._dispatch()
        self.flush()

    def _dispatch(self) -> None:
        for event in self.endpoint.events():
            if isinstance(event, MessageRejected):
                log.info("sip_message_rejected", source=f"{event.source[0]}:{event.source[1]}",
                         reason=event.reason, status=event.status)
            try:
                self._handler(event)
            except Exception:  # the endpoint boundary: one bad event must not stop every call
                log.exception("sip_event_handler_failed", event=type(event).__name__)

    def flush(self) -> None:
        """Send what the endpoint queued and re-arm the one timer (call after driving the endpoint)."""
        for data, destination in self.endpoint.datagrams_to_send():
            self._send(data, destination)
        deadline = self.endpoint.next_deadline()
        if deadline is None:
            return
        if self._timer is None or deadline < self._timer_at:
            self._cancel_timer()
            self._timer_at = deadline
            clock = self._clock  # a timer callback, not a task per re-arm
            self._timer = (self._loop if clock is None else clock).call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, data: bytes, destination: Address) -> None:
        if self._udp is not None:
            host, port = destination
            v4_on_v6 = self._udp_v6 and ":" not in host
            udp = self._udp
            if self._shared is not None and (self._shared_sends or (
                    destination in self._shared_peers and data.startswith(b"SIP/2.0 "))):
                udp = self._shared
            udp.sendto(data, (f"::ffff:{host}", port) if v4_on_v6 else destination)
            return
        if self._sink is not None:
            self._sink(data, destination)
            return
        conn = self._connections.get(destination)
        if conn is not None:
            conn.write(data)
            return
        pending = self._connecting.get(destination)
        if pending is not None:
            pending.append(data)
            return
        self._connecting[destination] = [data]
        self._spawn(self._connect(destination))

    async def _connect(self, destination: Address) -> None:
        try:
            await self._loop.create_connection(lambda: _TcpConnection(self, destination), *destination,
                                               ssl=self._client_ssl)
        except OSError as exc:  # ssl.SSLError (a failed handshake) is an OSError too
            log.warning("sip_tcp_connect_failed", peer=f"{destination[0]}:{destination[1]}", error=str(exc))
            self._connecting.pop(destination, None)
            self.endpoint.transport_failed(destination, self.now())
            self._dispatch()
            self.flush()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connection_up(self, peer: Address, conn: _TcpConnection) -> None:
        self._connections[peer] = conn
        for data in self._connecting.pop(peer, []):
            conn.write(data)

    def _connection_down(self, peer: Address, conn: _TcpConnection) -> None:
        if self._connections.get(peer) is conn:
            del self._connections[peer]


def _ignore(event: EndpointEvent) -> None:
    return None


def _unmapped(host: str, port: int) -> Address:
    """An IPv4 peer of a dual-stack socket (`::ffff:192.0.2.1`) as its IPv4 address: trust lists, Via
    `received` and logs see one form of each address."""
    if host.startswith("::ffff:") and "." in host:
        host = host.removeprefix("::ffff:")
    return host, port


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport, *, shared: bool = False) -> None:
        self._owner = owner
        self._shared = shared

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) > 4 and data[:4] != b"\r\n\r\n":  # skip keep-alive CRLFs
            source = _unmapped(addr[0], addr[1])
            if self._shared and self._owner.route is not None and self._owner.route(data, source):
                return
            if self._shared or self._owner._shared_peers:
                self._owner._came_in(source, self._shared)
            self._owner.deliver(data, source)

    def error_received(self, exc: Exception) -> None:
        log.info("sip_udp_error", error=str(exc))


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport, peer: Address | None) -> None:
        self._owner = owner
        self._peer = peer
        self._transport: asyncio.Transport | None = None
        self._framer = StreamFramer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP and TLS transports are not asyncio.Transport subclasses (they have its methods).
        self._transport = cast(asyncio.Transport, transport)
        if self._peer is None:
            name = transport.get_extra_info("peername")
            self._peer = _unmapped(name[0], name[1])
        self._owner._connection_up(self._peer, self)

    def data_received(self, data: bytes) -> None:
        assert self._peer is not None
        try:
            messages = self._framer.feed(data)
        except SipParseError as exc:  # a framing error poisons the stream: drop the connection
            log.info("sip_tcp_framing_failed", peer=f"{self._peer[0]}:{self._peer[1]}", error=str(exc))
            self.close()
            return
        for message in messages:
            self._owner.deliver(message, self._peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is not None:
            self._owner._connection_down(self._peer, self)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
