"""Ports for test peers that no other process on this machine is handed at the same time.

The usual trick, `bind(("127.0.0.1", 0))`, close, then hand the number to a program that binds it later
(SIPp, baresip, an `ivr serve`, redis-server), races: the kernel takes that number from its ephemeral
range, the same range it gives every other xdist worker's probe and every outgoing TCP connection (an HTTP
poll, a Redis or PostgreSQL client), so the peer then fails with "Address already in use".

Here a port comes from a pool *outside* the kernel's ephemeral range (and below no RTP range the engine
or the test callers use), so no connection is ever given it; and it is claimed with a POSIX lock on
its byte of one shared lock file, held for the life of the process, so no other process (another xdist
worker, another test run) is handed it either. Ports are handed out in pairs: an even port, with the
odd one above it claimed too (baresip's TLS and linphone's RTCP take port + 1), or a block of pairs for
a program that binds further up (`span`). A claimed port is probed free (UDP and TCP, and TCP on
port + 1) before it is handed out; a process that has claimed `MAX_CLAIMS` pairs hands its own ports
out again, the least recently handed out first, probing each again (a port handed out a moment ago may not be
bound yet: its probe passes, so recency, not the probe, keeps it from a second peer).

An engine the tests start is a node of `IVR_WORKERS` workers (one per CPU when unset or `null`), and worker
i also binds SIP `port + 1 + i` and HTTP `port + i` (`ivr.workers.plan`): `free_port` claims a block that
covers them, or a parallel test could be handed a worker's port between the claim and the engine's bind.

`IVR_TEST_PORTS=low-high` overrides the pool (both ends included).
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import socket
import tempfile
import threading
import zlib
from dataclasses import dataclass, field

from ivr.config import default_workers

__all__ = ["PortPool", "PoolExhausted", "free_port", "node_workers", "pool"]

MAX_CLAIMS = 200
"""Pairs one process claims before it hands its own out again (a test run needs far fewer at once)."""
_DEFAULT_POOL = (61000, 65535)
"""Above Linux's default ephemeral range (32768-60999); used when the machine's range leaves it free."""
_FALLBACK_POOL = (12000, 19999)
"""Below it, for a machine whose ephemeral range reaches 65535 (engine RTP is 20000-30000)."""
_LOCK_FILE = pathlib.Path(tempfile.gettempdir()) / "ivr-test-ports.lock"


class PoolExhausted(RuntimeError):
    """Every pair of the pool is claimed by other processes, or busy."""


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _pool_bounds() -> tuple[int, int]:
    override = os.environ.get("IVR_TEST_PORTS")
    if override:
        low, _, high = override.partition("-")
        return int(low), int(high)
    _, ephemeral_high = _ephemeral_range()
    return _DEFAULT_POOL if ephemeral_high < _DEFAULT_POOL[0] else _FALLBACK_POOL


def _probe(host: str, port: int) -> bool:
    """True when UDP and TCP `port`, and TCP `port + 1`, can be bound on `host` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    wanted = ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1))
    sockets = [socket.socket(family, kind) for kind, _ in wanted]
    try:
        for sock, (_, number) in zip(sockets, wanted, strict=True):
            sock.bind((host, number))
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()
    return True


@dataclass(slots=True)
class PortPool:
    """The even ports of [`low`, `high`] (each with the odd one above it), claimed across processes
    through byte-range locks on `lock_file`. POSIX locks belong to the process, not the object: one
    process must use one pool per lock file (`pool()`), or two of its pools would hand out one port."""

    low: int
    high: int
    lock_file: pathlib.Path = _LOCK_FILE
    max_claims: int = MAX_CLAIMS
    _fd: int | None = None
    _owner_pid: int = 0
    _claimed: list[int] = field(default_factory=list)
    _handed: dict[int, int] = field(default_factory=dict)
    """Port -> the number of the hand-out that last gave it (`_reuse_own` takes the least recent)."""
    _handouts: int = 0
    _cursor: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.low += self.low % 2
        if not 1024 <= self.low < self.high <= 65535:
            raise ValueError(f"bad test port pool {self.low}-{self.high}")

    @property
    def pairs(self) -> int:
        return (self.high - self.low + 1) // 2

    def take(self, host: str = "127.0.0.1", *, span: int = 2) -> int:
        """An even port free on `host` (UDP and TCP) with the ports above it up to `span` (rounded up to
        even) free too, all claimed by this process. `PoolExhausted` when no such block is free."""
        pairs = max(1, (span + 1) // 2)
        with self._lock:
            self._after_fork()
            port = self._claim_new(host, pairs) if len(self._claimed) < self.max_claims else None
            if port is None:
                port = self._reuse_own(host, pairs)
            if port is None:
                raise PoolExhausted(f"no free block of {pairs} port pair(s) in {self.low}-{self.high} "
                                    f"(lock file {self.lock_file})")
            self._handouts += 1
            for i in range(pairs):
                self._handed[port + 2 * i] = self._handouts
            return port

    def _after_fork(self) -> None:
        """A forked child inherits the file but not its locks: it starts its own claims."""
        if self._owner_pid != os.getpid():
            self._owner_pid = os.getpid()
            self._fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
            self._claimed, self._handed = [], {}
            # Processes start at different places in the pool, so they rarely contend for one lock.
            self._cursor = zlib.crc32(f"{os.getpid()}-{os.environ.get('PYTEST_XDIST_WORKER', '')}".encode())

    def _claim_new(self, host: str, pairs: int) -> int | None:
        assert self._fd is not None and self._cursor is not None
        starts = self.pairs - pairs + 1
        for _ in range(max(0, starts)):
            port = self.low + 2 * (self._cursor % starts)
            self._cursor += pairs
            block = [port + 2 * i for i in range(pairs)]
            if any(p in self._claimed for p in block):
                continue
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 2 * pairs, port)
            except OSError:
                continue  # another process holds some of it
            if all(_probe(host, p) for p in block):
                self._claimed.extend(block)
                return port
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 2 * pairs, port)  # busy for a reason of its own: leave it
        return None

    def _reuse_own(self, host: str, pairs: int) -> int | None:
        owned = set(self._claimed)
        blocks = [[port + 2 * i for i in range(pairs)] for port in self._claimed]
        mine = [block for block in blocks if all(p in owned for p in block)]
        mine.sort(key=lambda block: max(self._handed.get(p, 0) for p in block))  # stable: claim order on ties
        return next((block[0] for block in mine if all(_probe(host, p) for p in block)), None)


_pool: PortPool | None = None


def pool() -> PortPool:
    """This process's view of the machine-wide pool."""
    global _pool
    if _pool is None:
        _pool = PortPool(*_pool_bounds())
    return _pool


def node_workers() -> int:
    """Workers of each engine node the tests start: `IVR_WORKERS` (as `make test` sets it), or the engine's
    default, one per CPU, when it is unset or `null`."""
    value = os.environ.get("IVR_WORKERS", "").strip()
    return int(value) if value.isdigit() else default_workers()


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1", *, span: int | None = None) -> int:
    """A port that a peer program may bind on `host` a moment later, for UDP and TCP alike (SIPp and the
    engine open both), with the ports above it up to `span` free too (TCP port + 1 at least: baresip's
    TLS; SIPp's `-mp` takes port + 2 for video: ask `span=4`). Default: room for an engine node's worker
    ports above it (`node_workers() + 1`, at least 2). `kind` is accepted for the callers' sake: every
    port handed out is free for both."""
    del kind
    return pool().take(host, span=max(2, node_workers() + 1) if span is None else span)
