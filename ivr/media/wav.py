"""WAV files in and out: any common layout read and turned into 8 kHz int16 mono once, at load.

Reading understands PCM 8-bit (unsigned), 16-, 24- and 32-bit, IEEE float and G.711 μ-law/A-law
WAVs (the two formats telephony recordings often come in), mono or multichannel at any rate. The
RIFF chunks are read directly, because the stdlib `wave` module (Python 3.11) refuses every format
tag but plain PCM; writing uses `wave`.
"""

from __future__ import annotations

import pathlib
import struct
import wave
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ivr.media.errors import AudioFormatError
from ivr.media.g711 import PCMA, PCMU
from ivr.media.resample import TELEPHONY_RATE_HZ, resample

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3
_FORMAT_ALAW = 6
_FORMAT_ULAW = 7
_FORMAT_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True, slots=True)
class WavAudio:
    """Samples as read from a WAV file, before any conversion."""

    samples: NDArray[np.int16]
    """int16 samples, shape (frames, channels)."""
    rate_hz: int


def read_wav(path: str | pathlib.Path) -> WavAudio:
    """Read a WAV file into int16 samples of shape (frames, channels) at the file's own rate."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read WAV file: {exc.strerror}") from exc
    fmt, payload = _riff_chunks(path, data)
    tag, channels, rate_hz, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels < 1 or rate_hz < 1:
        raise AudioFormatError(f"{path}: WAV header has {channels} channels at {rate_hz} Hz")
    samples = _decode(path, tag, bits, payload)
    usable = samples.size - samples.size % channels
    return WavAudio(samples[:usable].reshape(-1, channels), rate_hz)


def load_telephony(path: str | pathlib.Path) -> NDArray[np.int16]:
    """Read a WAV file of any common layout as 8 kHz int16 mono (channels averaged, resampled)."""
    audio = read_wav(path)
    mono = audio.samples.astype(np.int32).mean(axis=1) if audio.samples.shape[1] > 1 else audio.samples[:, 0]
    return resample(np.rint(mono).astype(np.int16), audio.rate_hz, TELEPHONY_RATE_HZ)


def write_wav(path: str | pathlib.Path, audio: NDArray[np.int16], rate_hz: int = TELEPHONY_RATE_HZ) -> None:
    """Write int16 audio, shape (frames,) or (frames, channels), as a 16-bit PCM WAV file."""
    frames = audio.reshape(audio.shape[0], -1) if audio.ndim > 1 else audio.reshape(-1, 1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(frames.astype("<i2").tobytes())


def _riff_chunks(path: pathlib.Path, data: bytes) -> tuple[bytes, bytes]:
    """The `fmt ` and `data` chunk bodies of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        chunks.setdefault(chunk_id, data[offset + 8 : offset + 8 + size])
        offset += 8 + size + (size & 1)
    fmt = chunks.get(b"fmt ")
    if fmt is None or len(fmt) < 16:
        raise AudioFormatError(f"{path}: WAV file has no valid fmt chunk")
    if b"data" not in chunks:
        raise AudioFormatError(f"{path}: WAV file has no data chunk")
    return fmt, chunks[b"data"]


def _decode(path: pathlib.Path, tag: int, bits: int, payload: bytes) -> NDArray[np.int16]:
    """Interleaved int16 samples from a data chunk in the given format."""
    if tag == _FORMAT_ULAW and bits == 8:
        return PCMU.decode(payload)
    if tag == _FORMAT_ALAW and bits == 8:
        return PCMA.decode(payload)
    if tag == _FORMAT_FLOAT and bits in (32, 64):
        floats = np.frombuffer(payload[: len(payload) - len(payload) % (bits // 8)], dtype=f"<f{bits // 8}")
        return np.clip(np.rint(floats * 32767.0), -32768, 32767).astype(np.int16)
    if tag != _FORMAT_PCM:
        raise AudioFormatError(f"{path}: WAV format tag {tag} is not supported (PCM, float, A-law, μ-law)")
    width = bits // 8
    raw = payload[: len(payload) - len(payload) % width] if width else b""
    if bits == 8:
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        return (triples[:, 2].astype(np.int8).astype(np.int16) << 8 | triples[:, 1]).astype(np.int16)
    if bits == 32:
        return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    raise AudioFormatError(f"{path}: WAV sample width of {bits} bits is not supported (8, 16, 24, 32)")
