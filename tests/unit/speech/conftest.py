from __future__ import annotations

import pathlib
import wave

import numpy as np
import numpy.typing as npt

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "speech"
RATE = 8000


def load_wav(name: str) -> npt.NDArray[np.int16]:
    with wave.open(str(DATA / name), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def voiced(seconds: float, f0_hz: float = 150.0) -> npt.NDArray[np.int16]:
    """A harmonic-rich buzz, which webrtcvad takes for a voice."""
    t = np.arange(round(seconds * RATE)) / RATE
    sig = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 20))
    return (6000 * sig / np.abs(sig).max()).astype(np.int16)
