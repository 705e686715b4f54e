"""Where each received frame goes in a recording: a sample position from RTP timing and arrival time.

The two sides of a call arrive on their own clocks. A recording places each side's frames on one
timeline (samples since the recording started): a frame follows the previous one of its side by the
RTP timestamp difference, so jitter does not smear the audio. A side is re-anchored at its arrival
time on a new SSRC, on a timestamp jump (`JUMP_SAMPLES`), or when the two disagree by more than
`MAX_SKEW_SAMPLES` for `PERSIST_SAMPLES` of arrival time in a row (a sender clock that drifted). A
receiver that stalls (a busy machine) and then reads a burst of late frames disagrees only briefly:
those frames keep their RTP spacing, so the recording has no gap and no overlap there. Pure:
positions in, positions out.
"""

from __future__ import annotations

RATE_HZ = 8000
MAX_SKEW_SAMPLES = 1600
"""200 ms: beyond any jitter seen on a call, well under what a listener would notice as a shift."""
PERSIST_SAMPLES = 8000
"""1 s of arrivals all beyond `MAX_SKEW_SAMPLES`: a drift, not a stall (a stall's burst catches up sooner)."""
JUMP_SAMPLES = 16000
"""2 s: a timestamp this far from arrival is a jump in the sender's timestamps, re-anchored at once."""


def _ts_delta(a: int, b: int) -> int:
    """a - b for 32-bit RTP timestamps, wrapped to the nearest signed value."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class ChannelClock:
    """One side's placement state."""

    __slots__ = ("_position", "_timestamp", "_ssrc", "_skewed_since")

    def __init__(self) -> None:
        self._position: int | None = None
        self._timestamp = 0
        self._ssrc = -1
        self._skewed_since: int | None = None
        """Arrival of the first frame of the current run beyond `MAX_SKEW_SAMPLES`, None when in step."""

    def place(self, arrival: int, timestamp: int, ssrc: int) -> int:
        """The position (in samples) of a frame that arrived at sample `arrival` of the recording."""
        position = arrival
        if self._position is not None and ssrc == self._ssrc:
            expected = self._position + _ts_delta(timestamp, self._timestamp)
            if self._keeps_rtp_spacing(abs(expected - arrival), arrival):
                position = expected
        if position == arrival:
            self._skewed_since = None
        self._position, self._timestamp, self._ssrc = position, timestamp, ssrc
        return max(0, position)

    def _keeps_rtp_spacing(self, skew: int, arrival: int) -> bool:
        if skew <= MAX_SKEW_SAMPLES:
            self._skewed_since = None
            return True
        if skew > JUMP_SAMPLES:
            return False
        if self._skewed_since is None:
            self._skewed_since = arrival
        return arrival - self._skewed_since < PERSIST_SAMPLES


__all__ = ["JUMP_SAMPLES", "MAX_SKEW_SAMPLES", "PERSIST_SAMPLES", "RATE_HZ", "ChannelClock"]
