"""A test helper: collect what a media session receives (keys and audio) and wait for it.

For integration and interop tests (SIPp, baresip, our own sessions): attach a probe to a session,
drive the peer, then `await probe.wait_for_digits(4)` or `await probe.wait_for_audio(1.0)` and
assert on `probe.digits`, `probe.events`, `probe.audio()` or `dominant_frequency_hz(...)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ivr.rtp.events import DtmfReceived
from ivr.rtp.session import MediaSession


class MediaProbe:
    def __init__(self, session: MediaSession) -> None:
        self.session = session
        self.events: list[DtmfReceived] = []
        self._frames: list[NDArray[np.int16]] = []
        self._changed = asyncio.Event()
        self._detach = [session.on_dtmf(self._on_dtmf), session.add_audio_consumer(self._on_frame)]

    @property
    def digits(self) -> str:
        return "".join(event.digit for event in self.events)

    @property
    def received_s(self) -> float:
        return len(self._frames) * 0.02

    def audio(self) -> NDArray[np.int16]:
        """Everything received so far, 8 kHz int16."""
        return np.concatenate(self._frames) if self._frames else np.zeros(0, dtype=np.int16)

    def clear(self) -> None:
        self.events.clear()
        self._frames.clear()

    async def wait_for_digits(self, count: int, timeout_s: float = 5.0) -> str:
        """Wait until `count` keys have arrived; `TimeoutError` otherwise. Returns the digits."""
        await self._wait(lambda: len(self.events) >= count, timeout_s)
        return self.digits

    async def wait_for_audio(self, seconds: float, timeout_s: float = 5.0) -> NDArray[np.int16]:
        """Wait until `seconds` of audio have arrived; returns all of it."""
        await self._wait(lambda: self.received_s >= seconds - 1e-9, timeout_s)
        return self.audio()

    async def _wait(self, ready: Callable[[], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not ready():
                self._changed.clear()
                await self._changed.wait()

    def detach(self) -> None:
        for undo in self._detach:
            undo()
        self._detach = []

    def _on_dtmf(self, event: DtmfReceived) -> None:
        self.events.append(event)
        self._changed.set()

    def _on_frame(self, frame: NDArray[np.int16]) -> None:
        self._frames.append(frame)
        self._changed.set()


def dominant_frequency_hz(audio: NDArray[np.int16], rate_hz: int = 8000) -> float:
    """The strongest frequency in `audio` (Hann-windowed FFT peak), for asserting a tone came through."""
    if audio.size == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64) * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1.0 / rate_hz)[int(np.argmax(spectrum[1:])) + 1])


def level_dbfs(audio: NDArray[np.int16]) -> float:
    """RMS level relative to int16 full scale (-inf for silence)."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if audio.size else 0.0
    return 20.0 * float(np.log10(rms / 32768.0)) if rms > 0 else float("-inf")
