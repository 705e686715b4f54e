"""A two-channel 8 kHz PCM16 WAV file written as a call goes: frames land by position, in any order
within a short window, and what nobody said (a pause, a gap) is silence.

The file is a plain RIFF/WAVE (PCM, 2 channels, 8000 Hz, 16 bits): left the caller, right the agent.
Its header is written with zero sizes at open and fixed at `close`, so a file cut short by a crash is
still readable up to its last flush by tools that tolerate it (sox, ffmpeg). Blocking I/O: it runs in
the recording writer's thread, never on the event loop.
"""

from __future__ import annotations

import pathlib
import struct
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from ivr.recording.timeline import RATE_HZ

CHANNELS = 2
WINDOW_SAMPLES = 2 * RATE_HZ
"""Frames may land up to 2 s behind the newest one; older ones are dropped (counted as late)."""
FLUSH_SAMPLES = RATE_HZ // 2
"""Written to the file in steps of at least 0.5 s (8 KB stereo): few, large writes."""
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def wav_header(data_bytes: int, channels: int = CHANNELS, rate_hz: int = RATE_HZ) -> bytes:
    """A 44-byte PCM16 WAV header for `data_bytes` of samples."""
    block = channels * 2
    return _HEADER.pack(b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate_hz,
                        rate_hz * block, block, 16, b"data", data_bytes)


class StereoWavWriter:
    """One recording's file: `put` frames on either channel by position, `close(total)` to finish."""

    def __init__(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._file.write(wav_header(0))
        self._window = np.zeros((WINDOW_SAMPLES, CHANNELS), dtype=np.int16)
        self.flushed = 0
        """Samples (per channel) already in the file."""
        self.late_samples = 0
        """Samples that arrived after their place was written out (dropped)."""

    def put(self, channel: int, position: int, samples: NDArray[np.int16]) -> None:
        """`samples` of `channel` (0 left, 1 right) starting at sample `position` of the recording."""
        end = position + int(samples.size)
        if end > self.flushed + WINDOW_SAMPLES:
            self._flush_to(max(end - WINDOW_SAMPLES, min(position, self.flushed + FLUSH_SAMPLES)))
        start = max(position, self.flushed)
        if start > position:
            self.late_samples += min(start, end) - position
        if start < end:
            self._window[start - self.flushed : end - self.flushed, channel] = samples[start - position :]

    def _flush_to(self, upto: int) -> None:
        """Write out everything before sample `upto` (silence past the window)."""
        count = upto - self.flushed
        if count <= 0:
            return
        kept = min(count, WINDOW_SAMPLES)
        self._file.write(self._window[:kept].tobytes())
        if count > kept:
            self._write_silence(count - kept)
        self._window[: WINDOW_SAMPLES - kept] = self._window[kept:]
        self._window[WINDOW_SAMPLES - kept :] = 0
        self.flushed = upto

    def _write_silence(self, samples: int) -> None:
        chunk = bytes(CHANNELS * 2 * RATE_HZ)
        remaining = samples * CHANNELS * 2
        while remaining > 0:
            step = min(remaining, len(chunk))
            self._file.write(chunk[:step])
            remaining -= step

    def close(self, total_samples: int) -> int:
        """Write out the rest, padded or cut to `total_samples`, fix the header; returns bytes of audio."""
        if total_samples > self.flushed:
            self._flush_to(total_samples)
        data_bytes = self.flushed * CHANNELS * 2
        self._file.seek(0)
        self._file.write(wav_header(data_bytes))
        self._file.close()
        return data_bytes


__all__ = ["CHANNELS", "StereoWavWriter", "wav_header"]
