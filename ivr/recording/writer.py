"""The recordings' writer thread: the event loop hands it frames, it decodes and writes them.

Recording must never slow the media: the loop only appends a small tuple to a `queue.SimpleQueue`
(a C call, no lock held across I/O) and counts it; one daemon thread per engine decodes G.711, places
the audio in each recording's window (`StereoWavWriter`) and writes the files. The loop hands over a
channel's audio in runs (`ivr.recording.recorder.CHUNK_SAMPLES`), not packet by packet. The queue is
bounded by count: past `max_pending_chunks` not yet written, new runs are dropped and counted (a disk
that stalls costs gaps in recordings, not late packets). Opening and closing a recording are never dropped.
"""

from __future__ import annotations

import pathlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog

from ivr.media.g711 import G711Codec
from ivr.recording.stereo import StereoWavWriter

log = structlog.get_logger(__name__)

MAX_PENDING_CHUNKS = 3_000
"""Five runs a channel for 300 recorded calls (2.5 s of audio), ~12 MB of G.711 at most."""

Done = Callable[[int], None]
"""Told, in the writer thread, the bytes of audio a closed recording holds."""


@dataclass(slots=True, frozen=True)
class _Open:
    key: int
    path: pathlib.Path


@dataclass(slots=True, frozen=True)
class _Close:
    key: int
    total_samples: int
    done: Done | None


_Chunk = tuple[int, int, int, bytes, "G711Codec | None"]
"""(key, channel, position, G.711 payloads or PCM16 bytes, the payloads' codec or None for PCM16)."""


class RecordingWriter:
    """One thread writing every recording of the engine."""

    def __init__(self, max_pending_chunks: int = MAX_PENDING_CHUNKS) -> None:
        self.max_pending_chunks = max_pending_chunks
        self._queue: queue.SimpleQueue[_Open | _Close | _Chunk | None] = queue.SimpleQueue()
        self._files: dict[int, StereoWavWriter] = {}
        self._next_key = 0
        self.queued = 0
        """Runs handed to the thread (loop side)."""
        self.written = 0
        """Runs the thread has placed (thread side; `queued - written` is the backlog)."""
        self.dropped = 0
        """Runs dropped because the backlog was full."""
        self.bytes_written = 0
        """Audio bytes in recordings closed so far."""
        self._thread: threading.Thread | None = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
            self._thread.start()

    def open(self, path: pathlib.Path) -> int:
        """Start a file; returns its key for `frame` and `close`."""
        self._ensure_thread()
        self._next_key += 1
        self._queue.put(_Open(self._next_key, path))
        return self._next_key

    def chunk(self, key: int, channel: int, position: int, audio: bytes, codec: G711Codec | None) -> bool:
        """Queue a run of audio (G.711 payloads with their `codec`, or PCM16 bytes with None) starting at
        sample `position`; False if it was dropped."""
        if self.queued - self.written >= self.max_pending_chunks:
            self.dropped += 1
            return False
        self.queued += 1
        self._queue.put((key, channel, position, audio, codec))
        return True

    def close(self, key: int, total_samples: int, done: Done | None = None) -> None:
        """Finish the file at `total_samples` per channel; `done` is called from the thread after."""
        self._queue.put(_Close(key, total_samples, done))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then end the thread (blocking; call it off the loop or at shutdown)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._handle(item)
            except OSError:
                log.exception("recording_write_failed")

    def _handle(self, item: _Open | _Close | _Chunk) -> None:
        if isinstance(item, tuple):
            key, channel, position, audio, codec = item
            self.written += 1
            file = self._files.get(key)
            if file is not None:
                pcm = codec.decode(audio) if codec is not None else np.frombuffer(audio, dtype="<i2")
                file.put(channel, position, pcm.astype(np.int16, copy=False))
        elif isinstance(item, _Open):
            self._files[item.key] = StereoWavWriter(item.path)
        else:
            file = self._files.pop(item.key, None)
            size = file.close(item.total_samples) if file is not None else 0
            self.bytes_written += size
            if item.done is not None:
                item.done(size)


__all__ = ["MAX_PENDING_CHUNKS", "RecordingWriter"]
