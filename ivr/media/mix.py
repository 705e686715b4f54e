"""Mixing call audio in the linear domain: G.711 payloads in, one mixed payload out, per RTP frame.

A supervisor's whisper reaches the agent mixed into the caller's audio; a barge mixes all three.
One source is the *primary*: each of its packets is mixed with whatever the other sources sent since
(kept in a short bounded `SampleFifo` each) and sent on at once, with the primary's timing. So the
mix adds no clock of its own and no delay to the primary; a secondary that runs ahead of it loses its
oldest samples (at most `FIFO_SAMPLES` are kept), one that runs behind leaves silence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ivr.media.g711 import G711Codec

FIFO_SAMPLES = 1600
"""200 ms at 8 kHz: more than network jitter between two phones on one LAN/WAN path, little enough
that a secondary which runs ahead (clock drift) is never heard late by more than that."""


class SampleFifo:
    """A bounded queue of 8 kHz int16 samples: push what arrives, take exactly `n` (silence-padded)."""

    __slots__ = ("_buffer", "_size", "capacity", "dropped")

    def __init__(self, capacity: int = FIFO_SAMPLES) -> None:
        self.capacity = capacity
        self._buffer = np.zeros(capacity, dtype=np.int16)
        self._size = 0
        self.dropped = 0
        """Samples thrown away because the queue was full (the oldest go first)."""

    def __len__(self) -> int:
        return self._size

    def push(self, samples: NDArray[np.int16]) -> None:
        n = int(samples.size)
        if n >= self.capacity:
            self.dropped += self._size + n - self.capacity
            self._buffer[:] = samples[n - self.capacity :]
            self._size = self.capacity
            return
        overflow = self._size + n - self.capacity
        if overflow > 0:
            self._buffer[: self._size - overflow] = self._buffer[overflow : self._size]
            self._size -= overflow
            self.dropped += overflow
        self._buffer[self._size : self._size + n] = samples
        self._size += n

    def take(self, n: int) -> NDArray[np.int16]:
        """The oldest `n` samples (a new array), silence where fewer are queued."""
        out = np.zeros(n, dtype=np.int16)
        got = min(n, self._size)
        out[:got] = self._buffer[:got]
        self._buffer[: self._size - got] = self._buffer[got : self._size]
        self._size -= got
        return out


def mix(parts: list[NDArray[np.int16]]) -> NDArray[np.int16]:
    """Sum equal-length int16 signals, clipped to int16 (hard limiting: speech rarely peaks together)."""
    total = parts[0].astype(np.int32)
    for part in parts[1:]:
        total += part
    return np.clip(total, -32768, 32767).astype(np.int16)


def mix_payload(
    payload: bytes, source: G711Codec, others: list[SampleFifo], target: G711Codec
) -> bytes:
    """One primary packet's audio mixed with as many samples from each of `others`, in `target`'s law."""
    primary = source.decode(payload)
    return target.encode(mix([primary, *(fifo.take(primary.size) for fifo in others)]))


__all__ = ["FIFO_SAMPLES", "SampleFifo", "mix", "mix_payload"]
