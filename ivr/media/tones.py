"""Tone generation at 8 kHz: ringback, beeps, DTMF dual tones and a music-on-hold loop.

Everything returns int16 mono arrays at 8 kHz, rendered once (a hold loop is a few seconds of
audio played round and round, not synthesised per packet).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ivr.media.resample import TELEPHONY_RATE_HZ

DTMF_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COLUMNS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
"""Rows of the keypad: the digit at (row, column) sounds DTMF_ROWS_HZ[row] + DTMF_COLUMNS_HZ[column]."""
DTMF_DIGITS = "0123456789*#ABCD"


def dtmf_frequencies(digit: str) -> tuple[float, float]:
    """The (low, high) frequencies of a DTMF key; `ValueError` names an unknown key."""
    for row, keys in enumerate(DTMF_KEYPAD):
        column = keys.find(digit.upper()) if len(digit) == 1 else -1
        if column >= 0:
            return DTMF_ROWS_HZ[row], DTMF_COLUMNS_HZ[column]
    raise ValueError(f"{digit!r} is not a DTMF key (expected one of {DTMF_DIGITS})")


def level_to_amplitude(level_dbfs: float) -> float:
    """Peak amplitude in int16 units of a sine at `level_dbfs` (0 dBFS = full-scale peak)."""
    return float(32767.0 * 10.0 ** (level_dbfs / 20.0))


def tone(
    frequencies_hz: Sequence[float],
    duration_s: float,
    *,
    level_dbfs: float = -10.0,
    rate_hz: int = TELEPHONY_RATE_HZ,
    ramp_s: float = 0.005,
) -> NDArray[np.int16]:
    """A sum of sines, each at `level_dbfs`, with short raised-cosine ramps against clicks."""
    n = int(round(duration_s * rate_hz))
    t = np.arange(n, dtype=np.float64) / rate_hz
    signal = np.zeros(n, dtype=np.float64)
    amplitude = level_to_amplitude(level_dbfs)
    for frequency in frequencies_hz:
        signal += amplitude * np.sin(2.0 * np.pi * frequency * t)
    ramp = min(int(ramp_s * rate_hz), n // 2)
    if ramp > 0:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        signal[:ramp] *= edge
        signal[n - ramp :] *= edge[::-1]
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def silence(duration_s: float, *, rate_hz: int = TELEPHONY_RATE_HZ) -> NDArray[np.int16]:
    return np.zeros(int(round(duration_s * rate_hz)), dtype=np.int16)


def dtmf_tone(digit: str, duration_s: float = 0.1, *, level_dbfs: float = -10.0) -> NDArray[np.int16]:
    """The dual tone of one DTMF key (each component at `level_dbfs`)."""
    return tone(dtmf_frequencies(digit), duration_s, level_dbfs=level_dbfs)


def dtmf_sequence(
    digits: str, *, tone_s: float = 0.1, gap_s: float = 0.1, level_dbfs: float = -10.0
) -> NDArray[np.int16]:
    """Keys as a caller's phone sends them in-band: tone, pause, tone..."""
    parts: list[NDArray[np.int16]] = []
    for digit in digits:
        parts += [dtmf_tone(digit, tone_s, level_dbfs=level_dbfs), silence(gap_s)]
    return np.concatenate(parts) if parts else silence(0.0)


def beep(
    frequency_hz: float = 1000.0, duration_s: float = 0.2, *, level_dbfs: float = -12.0
) -> NDArray[np.int16]:
    """The record-after-the-tone beep."""
    return tone((frequency_hz,), duration_s, level_dbfs=level_dbfs)


class RingbackStyle(enum.Enum):
    """National ringback tones (ITU-T E.180 Supplement 2)."""

    EUROPE = "europe"
    """425 Hz, 1 s on, 4 s off (CEPT)."""
    CHINA = "china"
    """450 Hz, 1 s on, 4 s off."""
    NORTH_AMERICA = "north_america"
    """440 + 480 Hz, 2 s on, 4 s off."""


_RINGBACK: dict[RingbackStyle, tuple[tuple[float, ...], float, float]] = {
    RingbackStyle.EUROPE: ((425.0,), 1.0, 4.0),
    RingbackStyle.CHINA: ((450.0,), 1.0, 4.0),
    RingbackStyle.NORTH_AMERICA: ((440.0, 480.0), 2.0, 4.0),
}


def ringback(style: RingbackStyle = RingbackStyle.CHINA, *, level_dbfs: float = -16.0) -> NDArray[np.int16]:
    """One cadence period of ringback (tone then silence); loop it for as long as needed."""
    frequencies, on_s, off_s = _RINGBACK[style]
    return np.concatenate([tone(frequencies, on_s, level_dbfs=level_dbfs), silence(off_s)])


_HOLD_MELODY = (
    # (semitones from A4, beats): a slow pentatonic phrase in C major, ending on the tonic.
    (3, 1),
    (7, 1),
    (10, 1),
    (14, 2),
    (12, 1),
    (10, 1),
    (7, 2),
    (5, 1),
    (7, 1),
    (10, 1),
    (12, 2),
    (10, 1),
    (7, 1),
    (3, 2),
)


def music_on_hold(*, beat_s: float = 0.35, level_dbfs: float = -20.0) -> NDArray[np.int16]:
    """A soft, seamlessly looping melody: sine notes with a gentle octave partial and bell envelope."""
    rate = TELEPHONY_RATE_HZ
    amplitude = level_to_amplitude(level_dbfs)
    notes: list[NDArray[np.float64]] = []
    for semitones, beats in _HOLD_MELODY:
        frequency = 440.0 * 2.0 ** (semitones / 12.0)
        n = int(round(beats * beat_s * rate))
        t = np.arange(n) / rate
        envelope = np.minimum(t / 0.02, 1.0) * np.exp(-2.5 * t / (beats * beat_s))
        wave = np.sin(2 * np.pi * frequency * t) + 0.25 * np.sin(2 * np.pi * 2 * frequency * t)
        notes.append(amplitude / 1.25 * envelope * wave)
    melody = np.concatenate(notes + [np.zeros(int(beat_s * rate))])
    return np.rint(melody).astype(np.int16)
