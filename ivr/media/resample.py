"""Sample-rate conversion with soxr, done once when a prompt is loaded, never per packet."""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import NDArray

from ivr.media.errors import AudioFormatError

TELEPHONY_RATE_HZ = 8000
"""The one rate audio has inside a call: G.711 narrowband."""


def resample(audio: NDArray[np.int16], from_hz: int, to_hz: int) -> NDArray[np.int16]:
    """Resample mono int16 audio from `from_hz` to `to_hz` (soxr high quality), clipped to int16."""
    if from_hz <= 0 or to_hz <= 0:
        raise AudioFormatError(f"bad sample rate: {from_hz} Hz -> {to_hz} Hz (expected positive rates)")
    if audio.ndim != 1:
        raise AudioFormatError(f"resample expects mono audio, got an array of shape {audio.shape}")
    if from_hz == to_hz or audio.size == 0:
        return audio.astype(np.int16, copy=True)
    out: NDArray[np.float32] = soxr.resample(audio.astype(np.float32), from_hz, to_hz, quality="HQ")
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def to_telephony(audio: NDArray[np.int16], rate_hz: int) -> NDArray[np.int16]:
    """Mono int16 audio at any rate, converted to 8 kHz."""
    return resample(audio, rate_hz, TELEPHONY_RATE_HZ)


def from_telephony(audio: NDArray[np.int16], rate_hz: int) -> NDArray[np.int16]:
    """8 kHz call audio converted to `rate_hz` (e.g. 16 kHz for a recognizer)."""
    return resample(audio, TELEPHONY_RATE_HZ, rate_hz)
