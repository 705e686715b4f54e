"""RTP port allocation: even ports from a configured range, RTCP on the odd port above (RFC 3550 11).

Pure bookkeeping; the session does the binding and gives a port back if the OS refuses it.
Ports are handed out round-robin, so a port just released (whose old peer may still be sending)
is the last to be reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.rtp.errors import PortsExhausted


@dataclass(slots=True)
class PortAllocator:
    first: int = 10000
    last: int = 20000
    """Highest port that may be used (as RTP or RTCP)."""
    _in_use: set[int] = field(default_factory=set)
    _cursor: int = 0

    def __post_init__(self) -> None:
        if self.first % 2:
            self.first += 1
        if not 1024 <= self.first < self.last <= 65535:
            raise ValueError(
                f"bad RTP port range {self.first}-{self.last} (expected 1024 <= first < last <= 65535)"
            )
        self._cursor = self.first

    @property
    def capacity(self) -> int:
        """How many RTP/RTCP pairs the range holds."""
        return (self.last - self.first + 1) // 2

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def acquire(self) -> int:
        """An even port whose pair is free; `PortsExhausted` when the range is full."""
        for _ in range(self.capacity):
            port = self._cursor
            self._cursor = port + 2 if port + 3 <= self.last else self.first
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise PortsExhausted(f"no free RTP port pair in {self.first}-{self.last} ({self.in_use} in use)")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
