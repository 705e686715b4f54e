"""RTP port allocation: even ports from a configured range, RTCP on the odd port above (RFC 3550 11).

Pure bookkeeping; the engine does the binding and gives a port back if the OS refuses it. Ports are
drawn at random among the free pairs: handed out in order, the next caller's port was known to anyone
who had seen one (spraying RTP at the next ports took over the next caller's audio, issue 15).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ivr.rtp.errors import PortsExhausted


@dataclass(slots=True)
class PortAllocator:
    first: int = 10000
    last: int = 20000
    """Highest port that may be used (as RTP or RTCP)."""
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False)
    """Where the random draws come from (a seeded `random.Random` in tests)."""
    _in_use: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.first % 2:
            self.first += 1
        if not 1024 <= self.first < self.last <= 65535:
            raise ValueError(
                f"bad RTP port range {self.first}-{self.last} (expected 1024 <= first < last <= 65535)"
            )

    @property
    def capacity(self) -> int:
        """How many RTP/RTCP pairs the range holds."""
        return (self.last - self.first + 1) // 2

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def acquire(self) -> int:
        """A random even port whose pair is free; `PortsExhausted` when the range is full."""
        capacity = self.capacity
        if len(self._in_use) >= capacity:
            raise PortsExhausted(f"no free RTP port pair in {self.first}-{self.last} ({self.in_use} in use)")
        start = self.rng.randrange(capacity)
        for step in range(capacity):  # a random start, then the next free pair (few steps unless nearly full)
            port = self.first + 2 * ((start + step) % capacity)
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise AssertionError("a free pair was counted but not found")  # pragma: no cover

    def release(self, port: int) -> None:
        self._in_use.discard(port)
