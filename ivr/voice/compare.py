"""Is this the same audio? Normalised cross-correlation after alignment, for tests of played prompts.

Gain-independent and tolerant of a delay (leading silence, jitter-buffer latency), of resampling
and G.711 quantisation; a different text or voice scores far lower. Typical use in a test:

    match = audio_similarity(heard, expected)
    assert match.score >= 0.9, match
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ivr.media.resample import TELEPHONY_RATE_HZ


@dataclass(slots=True, frozen=True)
class AudioMatch:
    score: float
    """Peak normalised cross-correlation, -1..1 (1: the same waveform up to gain)."""
    lag_samples: int
    """How many samples `a` lags `b` at the best alignment (positive: `a` starts later)."""
    rate_hz: int = TELEPHONY_RATE_HZ

    @property
    def lag_s(self) -> float:
        return self.lag_samples / self.rate_hz


def audio_similarity(
    a: NDArray[np.int16],
    b: NDArray[np.int16],
    *,
    max_lag_s: float = 1.0,
    rate_hz: int = TELEPHONY_RATE_HZ,
) -> AudioMatch:
    """Best normalised cross-correlation of `a` and `b` over delays up to `max_lag_s` either way."""
    x = a.astype(np.float64) - (a.mean() if a.size else 0.0)
    y = b.astype(np.float64) - (b.mean() if b.size else 0.0)
    norm = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if norm == 0.0:
        return AudioMatch(1.0 if x.size == y.size and not np.any(x) and not np.any(y) else 0.0, 0, rate_hz)
    size = 1 << int(np.ceil(np.log2(x.size + y.size)))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    max_lag = int(max_lag_s * rate_hz)
    lags = np.concatenate(
        [np.arange(0, min(max_lag, x.size - 1) + 1), np.arange(-min(max_lag, y.size - 1), 0)]
    )
    values = corr[lags % size]
    best = int(np.argmax(values))
    return AudioMatch(float(values[best]) / norm, int(lags[best]), rate_hz)
