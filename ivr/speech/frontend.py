"""What a recognizer hears of an utterance: the caller's level set once per utterance, clipped peaks repaired.

Pure numpy, no clock: `UtteranceFrontEnd.push(audio)` takes call audio (8 kHz int16) as it arrives from
speech onset on and returns what is ready for the decoder; `flush()` returns the rest at the end.

Why (dev split, bench/RESULTS.md "Front end"): PocketSphinx's cepstral mean starts from a fixed initial
value and a short need ends before it adapts, so the caller's level moves the first cepstral coefficient of
the whole utterance; measured on the same clips, speech 10 dB louder than nominal (-10 dBFS) lost 20 of 50
points of right intents and 20 dB quieter (-40 dBFS) as many. And a loud caller clips (a phone's ADC, int16
or G.711's ceiling): at -6 dBFS 4-5 % of samples sit on the ceiling and almost nothing was recognized.

* Level: the gain is chosen once, from the first `settle_s` of the utterance (its loudest 20 ms frames,
  those within 30 dB of the loudest), so the active speech sits at `target_dbfs`; audio is held until
  then (the decoder catches up in a few milliseconds). One gain for the whole utterance, because a gain
  that moves inside it would move the cepstra the decoder's mean was fixed for. Within `dead_band_db` of
  the target the gain is 1 (a caller heard well is left as heard), and audio is released in 0.2 s blocks.
* Clipping: runs of samples at the audio's peak magnitude (flat tops: `CLIP_MIN_SAMPLES` pairs of
  neighbours on it, the peak at or above `CLIP_MIN_PEAK`) are redrawn by a cubic spline through the
  unclipped samples around them, kept on the clipped side of the ceiling and under 3x it; the level's
  gain then brings them back in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.interpolate import CubicSpline

__all__ = ["FrontEndConfig", "UtteranceFrontEnd"]

Audio = npt.NDArray[np.int16]
RATE_HZ = 8000
FRAME_SAMPLES = 160
FULL_SCALE = 32768.0
ACTIVE_RANGE_DB = 30.0
"""Frames within this much of the loudest frame are the caller speaking (the rest: pauses, the pre-roll)."""
CLIP_MIN_PEAK = 8000
"""A peak below this (-12 dBFS) is not a clipping ceiling: such audio is quiet, not saturated."""
CLIP_MIN_SAMPLES = 8
"""Samples on the ceiling, in runs of two or more, before it counts as clipping: a clipped waveform has flat
tops, while a natural peak (formant ringing, ~0.4 rad a sample at 500 Hz) rarely holds its maximum twice."""
CLIP_TOLERANCE = 0.995
"""A sample within 0.5 % of the ceiling is on it (G.711 quantises the ceiling to a step, not an exact value)."""
BLOCK_SAMPLES = 1600
"""Audio (0.2 s) gathered before each release once the gain is chosen (`ivr.speech.pool.STREAM_BATCH_SAMPLES`)."""
CONTEXT_SAMPLES = 32
"""Audio kept back from each push so a clipped run at its end is repaired with samples on both sides (4 ms)."""


@dataclass(slots=True, frozen=True)
class FrontEndConfig:
    """How call audio is conditioned for the recognizer (config keys `asr_level_dbfs`, `asr_declip`)."""

    target_dbfs: float | None = -23.0
    """RMS of the active speech after the gain; None leaves the level alone."""
    max_gain_db: float = 20.0
    """Largest boost (a whispering caller, a weak line); also bounds what a near-silent utterance gets."""
    min_gain_db: float = -20.0
    dead_band_db: float = 8.0
    """A caller within this much of the target keeps their level (gain 1): on the dev split the level cost
    right intents from 10 dB off nominal (-30 dBFS: none), and a caller heard well is left as heard (speech_load's
    caller, -17.5 dBFS: given -6 dB, 217/300 understood at 10 calls/s; left as heard, 300/300)."""
    settle_s: float = 0.8
    """Utterance audio (from the endpointer's pre-roll on) the level is measured on before any is released."""
    declip: bool = True

    def __post_init__(self) -> None:
        if self.min_gain_db > self.max_gain_db:
            raise ValueError(f"min_gain_db ({self.min_gain_db}) exceeds max_gain_db ({self.max_gain_db})")
        if self.settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {self.settle_s}")


def active_rms(audio: npt.NDArray[np.float64]) -> float:
    """RMS over the 20 ms frames within `ACTIVE_RANGE_DB` of the loudest (0 for silence)."""
    n = len(audio) // FRAME_SAMPLES
    if n == 0:
        return float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
    frames = audio[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
    power = np.einsum("ij,ij->i", frames, frames) / FRAME_SAMPLES
    active = power[power >= power.max() * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return float(np.sqrt(active.mean()))


class UtteranceFrontEnd:
    """One utterance's conditioning; make a new one per utterance."""

    def __init__(self, config: FrontEndConfig) -> None:
        self._config = config
        self._settle_samples = round(config.settle_s * RATE_HZ)
        self._held: list[Audio] = []
        self._held_samples = 0
        self._gain: float | None = None if config.target_dbfs is not None else 1.0
        self._ceiling = 0.0
        """Largest magnitude seen so far."""
        self._on_ceiling = 0
        """Samples seen within `CLIP_TOLERANCE` of `_ceiling` next to another such sample (counted again when
        the ceiling rises)."""
        self._tail = np.zeros(0, np.float64)
        """Samples held back for the next repair's context (`CONTEXT_SAMPLES`), not yet released."""

    @property
    def gain_db(self) -> float | None:
        """The utterance's gain once chosen (None while the level is still being measured)."""
        return None if self._gain is None else 20 * math.log10(self._gain)

    @property
    def clipping(self) -> bool:
        """Whether the audio so far has a clipping ceiling (its peaks are being repaired)."""
        return (
            self._config.declip and self._ceiling >= CLIP_MIN_PEAK and self._on_ceiling >= CLIP_MIN_SAMPLES
        )

    def push(self, audio: Audio) -> Audio:
        """Take the next audio of the utterance; return the conditioned audio now ready (maybe none).

        Audio is released in blocks of `BLOCK_SAMPLES` once the gain is chosen: numpy's cost is per call,
        not per sample, and the decoder takes its audio in batches of that size anyway."""
        self._held.append(audio)
        self._held_samples += len(audio)
        if self._held_samples < (self._settle_samples if self._gain is None else BLOCK_SAMPLES):
            return np.zeros(0, np.int16)
        return self._take_held(last=False)

    def flush(self) -> Audio:
        """The end of the utterance: everything still held, conditioned."""
        return self._take_held(last=True)

    def _take_held(self, *, last: bool) -> Audio:
        samples = np.concatenate(self._held).astype(np.float64) if self._held else np.zeros(0, np.float64)
        self._held, self._held_samples = [], 0
        self._watch_ceiling(samples)
        if self._gain is None:
            self._gain = self._choose_gain(samples)
        return self._release(samples, last=last)

    def _choose_gain(self, samples: npt.NDArray[np.float64]) -> float:
        target = self._config.target_dbfs
        if target is None:
            return 1.0
        level = active_rms(self._repaired(samples)) if self.clipping else active_rms(samples)
        wanted_db = target - 20 * math.log10(max(level, 1.0) / FULL_SCALE)
        if abs(wanted_db) < self._config.dead_band_db:
            return 1.0
        return float(10 ** (min(max(wanted_db, self._config.min_gain_db), self._config.max_gain_db) / 20))

    def _watch_ceiling(self, samples: npt.NDArray[np.float64]) -> None:
        if not len(samples):
            return
        magnitude = np.abs(samples)
        peak = float(magnitude.max())
        if peak > self._ceiling / CLIP_TOLERANCE:
            self._ceiling, self._on_ceiling = peak, 0
        elif peak > self._ceiling:
            self._ceiling = peak
        on = magnitude >= self._ceiling * CLIP_TOLERANCE
        self._on_ceiling += int(np.count_nonzero(on[1:] & on[:-1]))

    def _release(self, samples: npt.NDArray[np.float64], *, last: bool) -> Audio:
        assert self._gain is not None
        if not self.clipping:
            out = np.concatenate([self._tail, samples]) if len(self._tail) else samples
            self._tail = np.zeros(0, np.float64)
            return _to_int16(out * self._gain)
        joined = np.concatenate([self._tail, samples])
        keep = 0 if last else min(CONTEXT_SAMPLES, len(joined))
        repaired = self._repaired(joined)
        self._tail = joined[len(joined) - keep :]
        return _to_int16(repaired[: len(joined) - keep] * self._gain)

    def _repaired(self, samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """`samples` with the runs on the ceiling redrawn (a copy; unchanged when too few samples are clean)."""
        level = self._ceiling * CLIP_TOLERANCE
        clipped = np.abs(samples) >= level
        if not clipped.any():
            return samples
        clean = np.flatnonzero(~clipped)
        if len(clean) < 4:
            return samples
        where = np.flatnonzero(clipped)
        estimate = CubicSpline(clean, samples[clean])(where)
        sign = np.sign(samples[where])
        # Clipped samples were at least the ceiling, on their own side; a spline far from clean samples can
        # swing anywhere, so the repair is capped at 3x the ceiling (and floored at it when it turned back).
        out = samples.copy()
        out[where] = sign * np.clip(np.abs(estimate) * (np.sign(estimate) == sign), level, 3 * level)
        return out


def _to_int16(samples: npt.NDArray[np.float64]) -> Audio:
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)
