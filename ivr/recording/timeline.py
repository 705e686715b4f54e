"""Where each received frame goes in a recording: a sample position from RTP timing and arrival time.

The two sides of a call arrive on their own clocks. A recording places each side's frames on one
timeline (samples since the recording started): a frame follows the previous one of its side by the
RTP timestamp difference, so jitter does not smear the audio; when that disagrees with the arrival
time by more than `MAX_SKEW_SAMPLES` (a new SSRC, a long gap, a sender clock that drifted) the side
is re-anchored at its arrival time. Pure: positions in, positions out.
"""

from __future__ import annotations

RATE_HZ = 8000
MAX_SKEW_SAMPLES = 1600
"""200 ms: beyond any jitter seen on a call, well under what a listener would notice as a shift."""


def _ts_delta(a: int, b: int) -> int:
    """a - b for 32-bit RTP timestamps, wrapped to the nearest signed value."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class ChannelClock:
    """One side's placement state."""

    __slots__ = ("_position", "_timestamp", "_ssrc")

    def __init__(self) -> None:
        self._position: int | None = None
        self._timestamp = 0
        self._ssrc = -1

    def place(self, arrival: int, timestamp: int, ssrc: int) -> int:
        """The position (in samples) of a frame that arrived at sample `arrival` of the recording."""
        position = arrival
        if self._position is not None and ssrc == self._ssrc:
            expected = self._position + _ts_delta(timestamp, self._timestamp)
            if abs(expected - arrival) <= MAX_SKEW_SAMPLES:
                position = expected
        self._position, self._timestamp, self._ssrc = position, timestamp, ssrc
        return max(0, position)


__all__ = ["MAX_SKEW_SAMPLES", "RATE_HZ", "ChannelClock"]
