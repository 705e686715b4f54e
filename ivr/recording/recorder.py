"""Recording calls: a `Recording` per call, fed from a bridge tap or with PCM, written by one thread.

`Recorder.start(call_id)` opens `<directory>/<YYYY-MM-DD>/<call_id>.wav` (stereo: left the caller,
right the agent); `attach(bridge)` taps a live bridge so every packet either side sends is placed on
the recording's timeline (`ChannelClock`) and queued for the writer thread with its G.711 payload as
is, in runs of up to 0.5 s per channel (decoding happens there). `pause()` stops taking audio (card
numbers): the writer fills the time with silence, and the pause is kept with the recording. `stop()`
fixes the length (from start to stop, pauses included) and returns the summary the call's journey keeps.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from ivr.media.bridge import Bridge, RelayedPacket
from ivr.media.g711 import G711Codec
from ivr.recording.timeline import RATE_HZ, ChannelClock
from ivr.recording.writer import RecordingWriter

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def file_name(call_id: str, label: str = "") -> str:
    """A recording's file name: the call id with anything but `[A-Za-z0-9._@-]` replaced by `_`."""
    stem = _UNSAFE.sub("_", call_id)[:120] or "call"
    if stem.startswith("."):
        stem = "_" + stem[1:]
    return f"{stem}-{_UNSAFE.sub('_', label)}.wav" if label else f"{stem}.wav"


CHUNK_SAMPLES = RATE_HZ // 2
"""The loop hands the writer each channel's audio in runs of up to 0.5 s (25 packets): one queue entry
and one decode per run instead of per packet (per packet, the writer thread fell behind at 300 calls)."""


class _Chunk:
    """Consecutive audio of one channel not yet handed to the writer."""

    __slots__ = ("start", "end", "codec", "data", "frames")

    def __init__(self, start: int, codec: G711Codec | None) -> None:
        self.start = start
        self.end = start
        self.codec = codec
        """None: little-endian PCM16 bytes."""
        self.data = bytearray()
        self.frames = 0


@dataclass(slots=True, frozen=True)
class RecordingSummary:
    """A finished recording, as the call's record keeps it."""

    path: str
    duration_s: float
    pauses: tuple[tuple[float, float], ...]
    """(from_s, to_s) offsets where nothing was recorded (paused by API)."""
    dropped_frames: int
    """Frames lost because the writer fell behind (0 on a healthy disk)."""


class Recording:
    """One call's recording, live. Loop side only; the writer thread does the I/O."""

    def __init__(self, writer: RecordingWriter, path: pathlib.Path, started: float) -> None:
        self.path = path
        self._writer = writer
        self._key = writer.open(path)
        self._started = started
        self._clocks = (ChannelClock(), ChannelClock())
        self._pcm_samples = [0, 0]
        self._paused_at: float | None = None
        self._pauses: list[tuple[float, float]] = []
        self._dropped = 0
        self._chunks: list[_Chunk | None] = [None, None]
        self._untap: Callable[[], None] | None = None
        self._now: Callable[[], float] | None = None
        self.summary: RecordingSummary | None = None
        """Set once stopped."""

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def stopped(self) -> bool:
        return self.summary is not None

    def offset_s(self, now: float) -> float:
        return round(now - self._started, 3)

    def _arrival(self, now: float) -> int:
        return int(round((now - self._started) * RATE_HZ))

    # -- feeding ----------------------------------------------------------------------------------

    def attach(self, bridge: Bridge, now: Callable[[], float]) -> None:
        """Record what both sides of `bridge` say (side 0 left, side 1 right) until it closes or `stop`."""
        self._now = now
        self._untap = bridge.add_tap(self)

    def packet(self, side: int, packet: RelayedPacket, codec: G711Codec) -> None:
        """A bridge tap's packet (see `ivr.media.bridge.BridgeTap`)."""
        if packet.is_event or self._paused_at is not None or self.summary is not None or self._now is None:
            return
        position = self._clocks[side].place(self._arrival(self._now()), packet.timestamp, packet.ssrc)
        self._add(side, position, packet.payload, codec, len(packet.payload))

    def _add(self, channel: int, position: int, data: bytes, codec: G711Codec | None, samples: int) -> None:
        """Append to the channel's chunk, or ship it and start another where the audio does not follow on."""
        chunk = self._chunks[channel]
        if chunk is not None and (chunk.end != position or chunk.codec is not codec or chunk.end - chunk.start
                                  >= CHUNK_SAMPLES):
            self._ship(channel)
            chunk = None
        if chunk is None:
            chunk = self._chunks[channel] = _Chunk(position, codec)
        chunk.data += data
        chunk.end += samples
        chunk.frames += 1

    def _ship(self, channel: int) -> None:
        chunk, self._chunks[channel] = self._chunks[channel], None
        if chunk is not None and not self._writer.chunk(self._key, channel, chunk.start, bytes(chunk.data),
                                                        chunk.codec):
            self._dropped += chunk.frames

    def closed(self) -> None:
        """The bridge closed: the recording ends with it."""
        self._untap = None
        if self._now is not None and self.summary is None:
            self.stop(self._now())

    def add_pcm(self, channel: int, pcm: NDArray[np.int16], now: float) -> None:
        """8 kHz PCM for `channel` (0 left, 1 right), e.g. from `add_audio_consumer`, placed by arrival."""
        if self._paused_at is not None or self.summary is not None:
            return
        position = self._clocks[channel].place(self._arrival(now), self._pcm_samples[channel], -2)
        self._pcm_samples[channel] += int(pcm.size)
        self._add(channel, position, pcm.astype("<i2", copy=False).tobytes(), None, int(pcm.size))

    # -- control ----------------------------------------------------------------------------------

    def pause(self, now: float) -> bool:
        """Stop taking audio (silence is written meanwhile); False if already paused or stopped."""
        if self._paused_at is not None or self.summary is not None:
            return False
        self._paused_at = now
        for channel in (0, 1):
            self._ship(channel)
        return True

    def resume(self, now: float) -> bool:
        """Take audio again; False if not paused."""
        if self._paused_at is None or self.summary is not None:
            return False
        self._pauses.append((self.offset_s(self._paused_at), self.offset_s(now)))
        self._paused_at = None
        return True

    def stop(self, now: float, done: Callable[[int], None] | None = None) -> RecordingSummary:
        """End the recording at `now` (idempotent); `done(bytes)` runs in the writer thread once written."""
        if self.summary is not None:
            return self.summary
        if self._paused_at is not None:
            self.resume(now)
        if self._untap is not None:
            untap, self._untap = self._untap, None
            untap()
        for channel in (0, 1):
            self._ship(channel)
        total = self._arrival(now)
        self._writer.close(self._key, total, done)
        self.summary = RecordingSummary(str(self.path), round(total / RATE_HZ, 3), tuple(self._pauses), self._dropped)
        return self.summary


class Recorder:
    """Starts the engine's recordings under one directory, all written by one `RecordingWriter`."""

    def __init__(self, directory: pathlib.Path, writer: RecordingWriter | None = None) -> None:
        self.directory = directory
        self.writer = writer or RecordingWriter()

    def path_for(self, call_id: str, day: datetime, label: str = "") -> pathlib.Path:
        return self.directory / day.strftime("%Y-%m-%d") / file_name(call_id, label)

    def start(self, call_id: str, *, now: float, day: datetime, label: str = "") -> Recording:
        """A new recording of `call_id` from `now` (monotonic), filed under `day` (the call's date)."""
        return Recording(self.writer, self.path_for(call_id, day, label), now)

    def close(self) -> None:
        """Finish writing (blocking: at engine shutdown)."""
        self.writer.stop()


__all__ = ["Recorder", "Recording", "RecordingSummary", "file_name"]
