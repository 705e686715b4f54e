"""Content-addressed render cache: one 8 kHz WAV per (text, voice, rate, engine), named by its sha256.

`var/prompt-cache/ab/ab12….wav`. A changed text, voice, rate or engine version is a new key, so
the cache never serves stale audio and needs no invalidation; stale files are just unused.
Writes go to a temporary file then `os.replace`, so concurrent renders of one key are safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.media.errors import AudioFormatError
from ivr.media.resample import TELEPHONY_RATE_HZ
from ivr.media.wav import load_telephony, write_wav

DEFAULT_CACHE_DIR = Path("var/prompt-cache")
_FORMAT = "ivr-prompt-cache/1"


def render_key(text: str, voice: str, rate_wpm: int, engine_id: str) -> str:
    """sha256 over everything that changes the audio."""
    material = json.dumps([_FORMAT, TELEPHONY_RATE_HZ, engine_id, voice, rate_wpm, text], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class RenderCache:
    __slots__ = ("root",)

    def __init__(self, root: Path = DEFAULT_CACHE_DIR) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.wav"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.path(key).is_file()

    def load(self, key: str) -> NDArray[np.int16] | None:
        """The cached audio, or None when absent (or unreadable: it is then rendered again)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return load_telephony(path)
        except AudioFormatError:
            return None

    def store(self, key: str, samples: NDArray[np.int16]) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        try:
            write_wav(Path(tmp), samples)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
