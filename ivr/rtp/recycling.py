"""Closed sessions' socket pairs, kept a moment and handed to new sessions instead of binding afresh.

Binding an RTP/RTCP pair and closing it again is two sockets, two asyncio endpoints and about fifteen
system calls a call (issue 22: a tenth of a millisecond of a call answered under `bench.sip_cps`). A
closed session's pair waits here `drain_s` first, attached to nothing, so whatever the old call's peer
still sends is read and dropped: a late packet of the old call never reaches (or latches) a new one.
Then the next new session takes the pair that has waited longest. Pairs nobody took within `keep_s`,
and pairs beyond `max_pairs`, are closed and their port numbers go back to the allocator (which drew
them at random in the first place). Time is passed in; the sockets are whatever `DatagramPort`s the
engine's network made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ivr.rtp.address import Address
from ivr.rtp.net import DatagramPort, _ignore_datagram, _ignore_error, _ignore_lost

DRAIN_S = 0.5
"""How long a closed session's sockets read and drop what still arrives before a new session may take them."""
KEEP_S = 10.0
"""A pair no new session took within this long is closed (checked when sessions open and close)."""
MAX_PAIRS = 1024
"""Pairs waiting at most (at 600 calls a second about 300 wait out `DRAIN_S`); past it a pair is closed."""


@dataclass(slots=True)
class SocketPair:
    """A session's RTP port number and its two sockets (RTP on `port`, RTCP on `port + 1`)."""

    port: int
    rtp: DatagramPort
    rtcp: DatagramPort
    stale: Address | None = None
    """Where the last call's RTP came from (its late packets may still come): see `SourceGate.stale`."""


class SocketRecycler:
    """The pairs of closed sessions, oldest first; `take` one that has drained, `give` one back."""

    def __init__(self, release_port: Callable[[int], None], *, drain_s: float = DRAIN_S, keep_s: float = KEEP_S,
                 max_pairs: int = MAX_PAIRS) -> None:
        """`release_port(port)`: the allocator takes the number back once its pair is closed for good."""
        self._release_port = release_port
        self._drain_s = drain_s
        self._keep_s = keep_s
        self._max_pairs = max_pairs
        self._idle: deque[tuple[float, SocketPair]] = deque()

    def __len__(self) -> int:
        return len(self._idle)

    def give(self, pair: SocketPair, now: float) -> None:
        """A closed session's pair: kept to drain and be taken, or closed when the recycler is full."""
        self._expire(now)
        if len(self._idle) >= self._max_pairs:
            self._close(pair)
            return
        for sock in (pair.rtp, pair.rtcp):
            sock.attach(_ignore_datagram, _ignore_error, _ignore_lost)
        self._idle.append((now, pair))

    def take(self, now: float) -> SocketPair | None:
        """The pair that has waited longest, once it has drained `drain_s`; None when there is none."""
        self._expire(now)
        idle = self._idle
        while idle and now - idle[0][0] >= self._drain_s:
            pair = idle.popleft()[1]
            if _alive(pair.rtp) and _alive(pair.rtcp):
                return pair
            self._close(pair)
        return None

    def close_oldest(self) -> bool:
        """Close the pair that has waited longest (the port range is full); False when none waits."""
        if not self._idle:
            return False
        self._close(self._idle.popleft()[1])
        return True

    def close(self) -> None:
        while self.close_oldest():
            pass

    def _expire(self, now: float) -> None:
        idle = self._idle
        while idle and now - idle[0][0] > self._keep_s:
            self._close(idle.popleft()[1])

    def _close(self, pair: SocketPair) -> None:
        pair.rtp.close()
        pair.rtcp.close()
        self._release_port(pair.port)


def _alive(sock: DatagramPort) -> bool:
    """Whether a waiting socket is still open (a `DatagramPort` that cannot tell counts as open)."""
    return bool(getattr(sock, "alive", True))


__all__ = ["DRAIN_S", "KEEP_S", "MAX_PAIRS", "SocketPair", "SocketRecycler"]
