"""A deterministic fake TTS engine for the voice unit tests."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
from numpy.typing import NDArray


class FakeEngine:
    """A deterministic stand-in TTS: noise seeded by (text, voice, rate), then 0.4 s of silence.

    Counts its renders, so a test can prove a call never waited for synthesis.
    """

    engine_id = "fake-tts 1"

    def __init__(
        self, voices: frozenset[str] = frozenset({"cmn-latn-pinyin", "yue", "hak", "en-us"})
    ) -> None:
        self._voices = voices
        self.calls: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def voices(self) -> frozenset[str]:
        return self._voices

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
        with self._lock:
            self.calls.append((text, voice, rate_wpm))
        return fake_audio(text, voice, rate_wpm)


def fake_audio(text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
    seed = int.from_bytes(hashlib.sha256(f"{voice}|{rate_wpm}|{text}".encode()).digest()[:8], "little")
    speech = np.random.default_rng(seed).integers(-8000, 8000, size=200 * len(text) + 800, dtype=np.int16)
    return np.concatenate([speech, np.zeros(3200, dtype=np.int16)])
