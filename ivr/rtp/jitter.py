"""An adaptive jitter buffer for received audio: reorders, drops duplicates and late packets, marks losses.

Sans-I/O: `push(seq, timestamp, payload, now)` stores a packet, `pop(now)` returns the frames that
are ready, in sequence order, with `payload=None` for each frame given up as lost (the caller
conceals it). In-order packets are released at once; a gap is held open until the first packet
after it has waited `target_delay_s`, so reordering within that window is repaired. The target
adapts: three times the interarrival jitter (RFC 3550 A.8) but at least `min_delay_s`, plus one
frame for every recent packet that came too late (decaying as packets come on time), at most
`max_delay_s`.

The consumers are a recognizer and a recorder, not a loudspeaker, so frames need not come out on a
clock: releasing them as soon as they are known to be complete keeps latency low.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from ivr.rtp.packet import seq_delta

FRAME_S = 0.02
_RESET_DISTANCE = 1000
"""A sequence jump this large (either way) is a new stream, not loss or reordering."""


class PushResult(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    """Arrived after its slot was released or given up as lost."""


@dataclass(slots=True, frozen=True)
class JitterConfig:
    min_delay_s: float = 0.02
    max_delay_s: float = 0.2
    initial_delay_s: float = 0.04
    """How long the first packet waits, so a stream that starts out of order comes out in order."""
    max_packets: int = 50
    """Held packets beyond this force the oldest gap to be declared lost."""
    clock_rate_hz: int = 8000


@dataclass(slots=True, frozen=True)
class PlayoutFrame:
    sequence_number: int
    timestamp: int
    payload: bytes | None
    """None for a frame given up as lost; its timestamp is then extrapolated."""


@dataclass(slots=True)
class JitterStats:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    reordered: int = 0
    resets: int = 0


@dataclass(slots=True)
class _Held:
    timestamp: int
    payload: bytes
    arrival: float


@dataclass(slots=True)
class JitterBuffer:
    config: JitterConfig = field(default_factory=JitterConfig)
    stats: JitterStats = field(default_factory=JitterStats)
    _held: dict[int, _Held] = field(default_factory=dict)
    _next_seq: int | None = None
    _first_arrival: float | None = None
    _highest_seq: int | None = None
    _last_ts: int | None = None
    _last_seq: int | None = None
    _frame_ts: int = 160
    """Timestamp units per packet, learnt from consecutive packets (160 at 20 ms, 240 at 30 ms)."""
    _released: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    """Recently played sequence numbers, to tell a duplicate from a late packet."""
    _jitter_s: float = 0.0
    _last_transit: float | None = None
    _late_frames: float = 0.0
    """Extra delay, in frames, earned by packets that came late; decays as packets come on time."""

    @property
    def target_delay_s(self) -> float:
        cfg = self.config
        wanted = max(cfg.min_delay_s, 3.0 * self._jitter_s) + self._late_frames * FRAME_S
        return min(cfg.max_delay_s, wanted)

    def __len__(self) -> int:
        return len(self._held)

    def push(self, seq: int, timestamp: int, payload: bytes, now: float) -> PushResult:
        if self._next_seq is not None:
            distance = seq_delta(seq, self._next_seq)
            if abs(distance) >= _RESET_DISTANCE:
                self._reset()
            elif distance < 0:
                if seq in self._released:
                    self.stats.duplicates += 1
                    return PushResult.DUPLICATE
                self.stats.late += 1
                self._late_frames = min(self._late_frames + 1.0, self.config.max_delay_s / FRAME_S)
                return PushResult.LATE
        if seq in self._held:
            self.stats.duplicates += 1
            return PushResult.DUPLICATE
        self._accept(seq, timestamp, now)
        self._held[seq] = _Held(timestamp, payload, now)
        if self._first_arrival is None:
            self._first_arrival = now
        return PushResult.ACCEPTED

    def release_in_order(self, seq: int, timestamp: int, now: float) -> bool:
        """`push` then `pop` of the packet the buffer waits for when it holds nothing else: the usual case.

        True when `seq` is the next sequence number and nothing is held: the packet is accounted for (jitter,
        statistics, playout state) exactly as `push` + `pop` would, and is released at once, so the caller
        plays its payload without a `PlayoutFrame` or a trip through the held table (issue 22: two thirds
        of the receive path's Python per packet). False, with nothing changed, for every other packet:
        push and pop it as usual.
        """
        if seq != self._next_seq or self._held:
            return False
        self._accept(seq, timestamp, now)
        self._release(seq, timestamp)
        self._last_seq = seq
        self._next_seq = (seq + 1) & 0xFFFF
        return True

    def pop(self, now: float) -> list[PlayoutFrame]:
        """Frames ready to play, in order; lost frames have `payload=None`."""
        if not self._held:
            return []
        if self._next_seq is None:
            assert self._first_arrival is not None
            if now - self._first_arrival < self.config.initial_delay_s:
                return []
            reference = next(iter(self._held))
            self._next_seq = min(self._held, key=lambda s: seq_delta(s, reference))
        out: list[PlayoutFrame] = []
        while self._held:
            seq = self._next_seq
            held = self._held.pop(seq, None)
            if held is None:
                if not self._gap_expired(now):
                    break
                out.append(PlayoutFrame(seq, self._extrapolated_ts(), None))
                self.stats.lost += 1
            else:
                self._release(seq, held.timestamp)
                out.append(PlayoutFrame(seq, held.timestamp, held.payload))
            self._last_seq = seq
            self._next_seq = (seq + 1) & 0xFFFF
        return out

    def flush(self) -> list[PlayoutFrame]:
        """Everything still held, in order, with losses for the gaps (end of stream)."""
        return self.pop(float("inf"))

    def _accept(self, seq: int, timestamp: int, now: float) -> None:
        """Account for an accepted packet: reordering, jitter, the count."""
        highest = self._highest_seq
        if highest is not None and seq_delta(seq, highest) < 0:
            self.stats.reordered += 1
        else:
            self._highest_seq = seq
        self._update_jitter(timestamp, now)
        self.stats.accepted += 1

    def _release(self, seq: int, timestamp: int) -> None:
        """Account for a packet played out (before `_last_seq` moves to it): its frame step, the delay earned."""
        self._released.append(seq)
        last_ts = self._last_ts
        if last_ts is not None and self._last_seq == (seq - 1) & 0xFFFF:
            step = (timestamp - last_ts) & 0xFFFFFFFF
            if 0 < step <= self.config.clock_rate_hz // 10:
                self._frame_ts = step
        self._last_ts = timestamp
        if self._late_frames:
            self._late_frames = max(0.0, self._late_frames - 0.01)

    def _gap_expired(self, now: float) -> bool:
        if len(self._held) > self.config.max_packets:
            return True
        oldest = min(h.arrival for h in self._held.values())
        return now - oldest >= self.target_delay_s - 1e-9

    def _extrapolated_ts(self) -> int:
        if self._last_ts is None:
            nearest = min(self._held.values(), key=lambda h: h.arrival)
            return nearest.timestamp
        self._last_ts = (self._last_ts + self._frame_ts) & 0xFFFFFFFF
        return self._last_ts

    def _update_jitter(self, timestamp: int, now: float) -> None:
        transit = now - timestamp / self.config.clock_rate_hz
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            if d < 1.0:  # a timestamp jump (silence suppression, new source) is not jitter
                self._jitter_s += (d - self._jitter_s) / 16.0
        self._last_transit = transit

    def _reset(self) -> None:
        self.stats.resets += 1
        self._held.clear()
        self._released.clear()
        self._next_seq = None
        self._first_arrival = None
        self._highest_seq = None
        self._last_ts = None
        self._last_seq = None
        self._last_transit = None
