"""The workers of a node hand each other the SIP datagrams the kernel gave to the wrong one.

Each worker binds a Unix datagram socket `w<index>` in a folder the supervisor made for the node (mode
0700: only the node's own user can send there, which is the authentication). A datagram of the shared
SIP port that `ivr.workers.routing` says belongs to another worker is sent there unchanged, after a
one-line envelope with the peer's address (`host port\\n`), and that worker handles it as if the
kernel had given it the datagram: answers go to the peer from the shared port. Bounded by the kernel's
socket buffers: a datagram the owner cannot take now (buffer full, worker restarting) is dropped and
counted, as UDP would lose it, and the peer retransmits. A new call is spread over the workers by its
Call-ID (`routing.call_worker`); one its worker cannot take (gone, restarting, its buffer full) is kept
and answered where it arrived instead, as it would have been without the spreading. Counted on /metrics as
`ivr_worker_datagrams_total{way="forwarded|received|dropped|kept"}`.

Stream transports (TCP, TLS) are not forwarded: their listeners are worker 0's alone, so every dialog
they carry lives on worker 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import structlog

from ivr.sip.events import Address
from ivr.workers import routing

log = structlog.get_logger(__name__)

BUFFER_BYTES = 1024 * 1024
MAX_DATAGRAM_BYTES = 65536 + 128
"""A UDP datagram and its envelope."""

Deliver = Callable[[bytes, Address], None]


def socket_path(folder: Path, index: int) -> Path:
    return folder / f"w{index}"


def envelope(data: bytes, source: Address) -> bytes:
    return f"{source[0]} {source[1]}\n".encode() + data


def opened(payload: bytes) -> tuple[bytes, Address] | None:
    """The datagram and peer address inside an envelope; None if it is not one."""
    line, newline, data = payload.partition(b"\n")
    host, _, port = line.partition(b" ")
    if not newline or not host or not port.isdigit() or not data:
        return None
    return data, (host.decode("ascii", "replace"), int(port))


class WorkerMesh:
    """This worker's end of the node's local forwarding (see the module docstring)."""

    def __init__(self, folder: Path, me: int, count: int, deliver: Deliver) -> None:
        self.folder = folder
        self.me = me
        self.count = count
        self._deliver = deliver
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.forwarded = 0
        self.received = 0
        self.dropped = 0
        self.kept = 0
        """New calls handled here because the worker they hash to could not take them."""
        self.elsewhere: Callable[[bytes, Address], int | None] | None = None
        """For a datagram no stamp places: the worker that must take it anyway (an agent's phone calling
        about the caller another worker holds), else None."""

    def open(self) -> None:
        path = socket_path(self.folder, self.me)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead incarnation's socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, BUFFER_BYTES)
        sock.bind(str(path))
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self._sock is None:
            return
        assert self._loop is not None
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(FileNotFoundError):
            socket_path(self.folder, self.me).unlink()

    def route(self, data: bytes, source: Address) -> bool:
        """A datagram of the shared port: True if another worker holds it, or takes it (it went there)."""
        index = routing.target(data, self.me, self.count)
        if index is None:
            index = routing.registrar_worker(data, source[0], self.count)
        if index is None and self.elsewhere is not None:
            index = self.elsewhere(data, source)
        if index is not None:
            if index == self.me:
                return False
            if not self.forward(index, data, source):
                self.dropped += 1  # its transaction, dialog or registrar lives there: as if UDP lost it
            return True
        index = routing.call_worker(data, self.count)
        if index is None or index == self.me:
            return False
        if self.forward(index, data, source):
            return True
        self.kept += 1
        return False

    def forward(self, index: int, data: bytes, source: Address) -> bool:
        """Hand `data` to worker `index`; False when it cannot take it now."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(envelope(data, source), str(socket_path(self.folder, index)))
        except OSError as exc:  # full (BlockingIOError), or the worker is gone or restarting
            log.info("worker_forward_failed", worker=index, error=type(exc).__name__)
            return False
        self.forwarded += 1
        return True

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                payload = sock.recv(MAX_DATAGRAM_BYTES)
            except BlockingIOError:
                return
            inside = opened(payload)
            if inside is None:
                log.warning("worker_forward_malformed", size=len(payload))
                continue
            self.received += 1
            self._deliver(*inside)
            sock = self._sock


__all__ = ["WorkerMesh", "envelope", "opened", "socket_path"]
