"""In-band DTMF detection with the Goertzel algorithm, for trunks that send neither RFC 4733 nor INFO.

`tone_powers` evaluates the Goertzel single-frequency DFT for many windows at once as one matrix
product (the same |X(f)|² the Goertzel recursion computes, without a Python loop per sample).
The detector uses the same projection per 10 ms hop and combines hops into windows.
`DtmfDetector` slides a 20 ms window in 10 ms hops over the call audio and accepts a key only when,
in three consecutive windows (40 ms of tone), one row and one column tone:

- each reach a minimum level,
- clearly dominate the other tones of their group,
- stay within the twist limits (the level difference between the groups), and
- carry most of the window's energy (rejects speech and music).

A key is reported once per press: after a report the detector needs three windows without that key
before it can report the same key again, so a brief dropout in a long press is not a second digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ivr.media.resample import TELEPHONY_RATE_HZ
from ivr.media.tones import DTMF_COLUMNS_HZ, DTMF_KEYPAD, DTMF_ROWS_HZ, level_to_amplitude


def goertzel_basis(frequencies_hz: tuple[float, ...], window: int, rate_hz: int) -> NDArray[np.float64]:
    """A (window, 2F) matrix: the cosine and sine of each frequency, for `tone_powers`."""
    n = np.arange(window, dtype=np.float64)[:, None]
    omega = 2.0 * np.pi * np.asarray(frequencies_hz, dtype=np.float64)[None, :] / rate_hz
    return np.hstack([np.cos(omega * n), np.sin(omega * n)])


def tone_powers(windows: NDArray[np.float64], basis: NDArray[np.float64]) -> NDArray[np.float64]:
    """Energy of each frequency in each window, shape (W, F), on the scale of `sum(x**2)`.

    A sine of amplitude A filling a window of N samples gives A²·N/2, which is also its share of
    `sum(x**2)`, so powers can be compared with the window's total energy directly.
    """
    projections = windows @ basis
    half = basis.shape[1] // 2
    squared = projections[:, :half] ** 2 + projections[:, half:] ** 2
    result: NDArray[np.float64] = squared * (2.0 / basis.shape[0])
    return result


@dataclass(frozen=True, slots=True)
class DtmfDetectorConfig:
    window_samples: int = 160
    """20 ms at 8 kHz: 50 Hz resolution, enough to separate the DTMF rows (73 Hz apart at least)."""
    hop_samples: int = 80
    min_windows: int = 3
    """Consecutive windows with the same key before it counts: 160 + 2·80 samples = 40 ms of tone."""
    release_windows: int = 3
    """Windows without the key before the same key can be reported again: a break of 10 ms (which
    Q.24 says must not split a key) spoils at most two windows; the 40 ms minimum pause spoils five."""
    min_level_dbfs: float = -38.0
    """Minimum level of each of the two tones (peak, relative to int16 full scale)."""
    normal_twist_db: float = 8.0
    """How much louder the high (column) tone may be than the low (row) tone."""
    reverse_twist_db: float = 4.0
    """How much louder the low (row) tone may be than the high (column) tone."""
    dominance_db: float = 6.0
    """How far the strongest tone of a group must stand above the second strongest."""
    min_tone_fraction: float = 0.6
    """Share of the window's energy that the two tones must carry."""


@dataclass(slots=True)
class DtmfDetector:
    """Feed int16 audio at 8 kHz in any chunk size; get back the keys, each once, with their sample offset.

    Cost matters (it runs on every frame of a call without RFC 4733): windows are cut from whole
    hops with one `hstack`, quiet windows are rejected from their energy before any projection,
    and the per-window decision runs on eight Python floats rather than a dozen numpy calls on
    arrays that small. Most of a call is quiet on the caller's side (they listen): when a chunk and
    the samples still pending hold less energy in all than one window needs (`2 * _min_power`), no
    window over them can pass the energy test, so the chunk only moves the offsets on
    (`_feed_quiet`), with the same keys as the full path.
    """

    config: DtmfDetectorConfig = field(default_factory=DtmfDetectorConfig)
    _basis: NDArray[np.float64] = field(init=False, repr=False)
    _pending: NDArray[np.float64] = field(init=False, repr=False)
    """Samples not yet in a full window, plus the overlap the next window shares with the last."""
    _consumed: int = field(default=0, init=False)
    """Offset in the stream of `_pending[0]`."""
    _min_power: float = field(default=0.0, init=False)
    _run_key: str | None = field(default=None, init=False)
    _run_length: int = field(default=0, init=False)
    _latched: str | None = field(default=None, init=False)
    _misses: int = field(default=0, init=False)
    _pending_energy: float | None = field(default=0.0, init=False)
    """Energy of `_pending` (sum of squares); None until a quiet chunk needs it."""

    def __post_init__(self) -> None:
        cfg = self.config
        if cfg.window_samples % cfg.hop_samples:
            raise ValueError(f"window of {cfg.window_samples} samples is not a whole number of hops")
        self._basis = goertzel_basis(DTMF_ROWS_HZ + DTMF_COLUMNS_HZ, cfg.window_samples, TELEPHONY_RATE_HZ)
        self._pending = np.zeros(0, dtype=np.float64)
        self._min_power = level_to_amplitude(cfg.min_level_dbfs) ** 2 * cfg.window_samples / 2.0

    def feed(self, audio: NDArray[np.int16]) -> list[tuple[str, int]]:
        """Process more audio; return (key, sample offset where it was confirmed) for each new key."""
        cfg = self.config
        hop, window = cfg.hop_samples, cfg.window_samples
        samples = audio.astype(np.float64)
        floor, energy = 2.0 * self._min_power, float(samples @ samples)
        if energy < floor:  # a quiet chunk (most of a call): is all the audio of its windows quiet too?
            if self._pending_energy is None:
                self._pending_energy = float(self._pending @ self._pending)
            if self._pending_energy + energy < floor:
                return self._feed_quiet(samples)
        span = window // hop
        buffer = np.concatenate([self._pending, samples]) if self._pending.size else samples
        count = (buffer.size - window) // hop + 1
        if count <= 0:
            self._pending, self._pending_energy = buffer, None
            return []
        blocks = buffer[: (count + span - 1) * hop].reshape(count + span - 1, hop)
        start = self._consumed
        self._pending, self._pending_energy = buffer[count * hop :], None
        self._consumed += count * hop
        block_energy = np.einsum("ij,ij->i", blocks, blocks)
        energies = block_energy[:count].copy()
        for i in range(1, span):
            energies += block_energy[i : i + count]
        loud = energies >= 2.0 * self._min_power
        if not loud.any():
            keys: list[str | None] = [None] * count
        else:
            windows = np.hstack([blocks[i : i + count] for i in range(span)]) if span > 1 else blocks
            projections = windows @ self._basis
            squared = projections * projections
            half = squared.shape[1] // 2
            powers = ((squared[:, :half] + squared[:, half:]) * (2.0 / window)).tolist()
            energy_list = energies.tolist()
            keys = [self._classify(powers[i], energy_list[i]) for i in range(count)]
        found: list[tuple[str, int]] = []
        for index, key in enumerate(keys):
            if self._step(key):
                assert self._latched is not None
                found.append((self._latched, start + index * hop + window))
        return found

    def _feed_quiet(self, samples: NDArray[np.float64]) -> list[tuple[str, int]]:
        """`feed` for a chunk too quiet, with what is pending, for any window to pass the energy test."""
        cfg = self.config
        hop, window = cfg.hop_samples, cfg.window_samples
        total = self._pending.size + samples.size
        count = (total - window) // hop + 1
        keep = total - max(count, 0) * hop
        if keep <= samples.size:
            self._pending = samples[samples.size - keep :]
        else:
            self._pending = np.concatenate([self._pending[self._pending.size - (keep - samples.size) :], samples])
        self._pending_energy = None
        if count <= 0:
            return []
        self._consumed += count * hop
        for _ in range(count):
            self._step(None)  # no key: a run ends, a latched key is released after its misses
        return []

    def _classify(self, powers: list[float], energy: float) -> str | None:
        """The key one window holds, or None."""
        cfg = self.config
        if energy < 2.0 * self._min_power:
            return None
        rows, columns = powers[:4], powers[4:]
        row_peak, column_peak = max(rows), max(columns)
        if row_peak < self._min_power or column_peak < self._min_power:
            return None
        if row_peak + column_peak < cfg.min_tone_fraction * energy:
            return None
        if column_peak > row_peak * _db(cfg.normal_twist_db) or row_peak > column_peak * _db(
            cfg.reverse_twist_db
        ):
            return None
        row, column = rows.index(row_peak), columns.index(column_peak)
        dominance = _db(cfg.dominance_db)
        if any(p * dominance > row_peak for i, p in enumerate(rows) if i != row):
            return None
        if any(p * dominance > column_peak for i, p in enumerate(columns) if i != column):
            return None
        return DTMF_KEYPAD[row][column]

    def _step(self, key: str | None) -> bool:
        """Advance the press/release state by one window; True when a new key is confirmed."""
        cfg = self.config
        if key == self._run_key:
            self._run_length += 1
        else:
            self._run_key, self._run_length = key, 1
        if self._latched is not None:
            self._misses = 0 if key == self._latched else self._misses + 1
            if self._misses >= cfg.release_windows:
                self._latched = None
        if self._latched is None and self._run_key is not None and self._run_length >= cfg.min_windows:
            self._latched = self._run_key
            self._misses = 0
            return True
        return False


def _db(decibels: float) -> float:
    """A power ratio from decibels."""
    return float(10.0 ** (decibels / 10.0))
