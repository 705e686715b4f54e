"""Datagram sockets for media, behind a small seam so a test can run calls without any.

`DatagramNetwork.bind(host, port)` gives a `DatagramPort` (send, close, and `attach` for what it
receives). `UdpNetwork` is the real one: asyncio (uvloop in production) UDP sockets of the family of
the host they bind: IPv4 for an IPv4 address, IPv6 for an IPv6 one, and dual stack for `::` (so an
engine listening on `::` takes IPv4 and IPv6 calls alike). Addresses cross the seam normalized
(`ivr.rtp.address.normalize`): the session never sees 4-tuples or v4-mapped forms.
`ivr.testing.rtpprobe.MemoryNetwork` is the in-memory one tests drive with a `FakeClock`.

A send error surfaces two ways, depending on the loop and the error: raised from `sendto` (uvloop's
`ValueError` for an address of the other family) or passed to the protocol's `error_received`
during the call (`EINVAL` from a loopback socket to another host). Both reach the port's `on_error`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Protocol, cast

import structlog

from ivr.rtp.address import Address, ip_of, normalize, send_form

log = structlog.get_logger(__name__)

Receiver = Callable[[bytes, Address], None]
ErrorListener = Callable[[Exception], None]
LostListener = Callable[[], None]

SOCKET_BUFFER_BYTES = 256 * 1024


class DatagramPort(Protocol):
    """One bound media socket (RTP or RTCP)."""

    def attach(self, receiver: Receiver, on_error: ErrorListener, on_lost: LostListener) -> None:
        """Where received datagrams, send errors and an unexpected close (the socket died) go."""
        ...

    def sendto(self, data: bytes, address: Address) -> None:
        """Send one datagram; may raise `OSError`/`ValueError` or report through `on_error`."""
        ...

    def close(self) -> None: ...


class DatagramNetwork(Protocol):
    async def bind(self, host: str, port: int) -> DatagramPort:
        """A port bound to (host, port); `OSError` (EADDRINUSE...) when the OS refuses it."""
        ...


def _ignore_datagram(data: bytes, source: Address) -> None:
    pass


def _ignore_error(exc: Exception) -> None:
    pass


def _ignore_lost() -> None:
    pass


class _UdpPort(asyncio.DatagramProtocol):
    """An asyncio datagram protocol and the port the session talks to, in one object.

    Per packet, no call of ours stands between the loop and the session (issue 22: each way, 50 packets a second
    per call): `datagram_received` is the attached receiver itself on an IPv4 socket (the loop looks the method
    up on every datagram), and `sendto` is the transport's own unless the socket is dual stack.
    """

    datagram_received: Receiver  # type: ignore[assignment]  # an attribute: the receiver itself, see above
    sendto: Callable[[bytes, Address], None]
    """Send one datagram (see `DatagramPort.sendto`)."""

    def __init__(self, dual_stack: bool, ipv6: bool) -> None:
        self._dual_stack = dual_stack
        self._ipv6 = ipv6
        self._transport: asyncio.DatagramTransport | None = None
        self._receiver: Receiver = _ignore_datagram
        self._on_error: ErrorListener = _ignore_error
        self._on_lost: LostListener = _ignore_lost
        self._closing = False
        self.datagram_received = self._normalized if ipv6 else _ignore_datagram
        self.sendto = self._send_unready

    def attach(self, receiver: Receiver, on_error: ErrorListener, on_lost: LostListener) -> None:
        self._receiver, self._on_error, self._on_lost = receiver, on_error, on_lost
        if not self._ipv6:
            self.datagram_received = receiver

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass
        self.sendto = self._send_dual_stack if self._dual_stack else self._transport.sendto

    def _normalized(self, data: bytes, addr: tuple[str, int]) -> None:
        """An IPv6 socket's sources: 4-tuples and v4-mapped forms become the plain address."""
        self._receiver(data, normalize(addr))

    def error_received(self, exc: Exception) -> None:
        self._on_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            self._on_lost()

    @property
    def alive(self) -> bool:
        """Open, and not lost under us (`ivr.rtp.recycling` checks a waiting socket before reuse)."""
        return self._transport is not None and not self._closing and not self._transport.is_closing()

    def _send_dual_stack(self, data: bytes, address: Address) -> None:
        assert self._transport is not None
        self._transport.sendto(data, send_form(address, True))

    def _send_unready(self, data: bytes, address: Address) -> None:
        raise OSError(f"the socket for {address} is not open yet")

    def close(self) -> None:
        self._closing = True
        # Nothing is delivered after close: drop the session's callbacks, so the session (which holds
        # this port) is freed by reference counting, not left in a cycle for the GC (issue 22).
        self._receiver, self._on_error, self._on_lost = _ignore_datagram, _ignore_error, _ignore_lost
        self.datagram_received = _ignore_datagram
        if self._transport is not None:
            self._transport.close()


class UdpNetwork:
    """Real UDP sockets on the running loop."""

    async def bind(self, host: str, port: int) -> DatagramPort:
        ip = ip_of(host)
        ipv6 = ip is not None and ip.version == 6 or ip is None and ":" in host
        dual_stack = ip is not None and ip.version == 6 and ip.is_unspecified
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if dual_stack:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        udp = _UdpPort(dual_stack, ipv6)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: udp, sock=sock)
        return udp
