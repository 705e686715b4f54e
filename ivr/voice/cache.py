"""Content-addressed render cache: one 8 kHz WAV per (text, voice, rate, engine), named by its sha256.

`var/prompt-cache/ab/ab12….wav`. A changed text, voice, rate or engine version is a new key, so
the cache never serves stale audio and needs no invalidation; stale files are just unused.
Writes go to a temporary file then `os.replace`, so concurrent renders of one key are safe.

Renders of a caller's own data (a name, an amount, a policy number read out) are personal data:
they live apart, under `personal/`, and `purge_personal` deletes those older than the retention
(`ivr purge`); the flows' fixed prompts are not personal and stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from datetime import datetime
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


PERSONAL_DIR = "personal"


class RenderCache:
    __slots__ = ("root",)

    def __init__(self, root: Path = DEFAULT_CACHE_DIR) -> None:
        self.root = root

    def path(self, key: str, *, personal: bool = False) -> Path:
        base = self.root / PERSONAL_DIR if personal else self.root
        return base / key[:2] / f"{key}.wav"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.path(key).is_file()

    def load(self, key: str, *, personal: bool = False) -> NDArray[np.int16] | None:
        """The cached audio, or None when absent (or unreadable: it is then rendered again)."""
        path = self.path(key, personal=personal)
        if not path.is_file():
            return None
        try:
            return load_telephony(path)
        except AudioFormatError:
            return None

    def store(self, key: str, samples: NDArray[np.int16], *, personal: bool = False) -> Path:
        path = self.path(key, personal=personal)
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

    def purge_personal(self, before: datetime) -> int:
        """Delete the personal renders written before `before` (wall time); how many were deleted.

        A render's age is its file's modification time: it is written once and never rewritten.
        """
        folder = self.root / PERSONAL_DIR
        if not folder.is_dir():
            return 0
        cutoff = before.timestamp()
        purged = 0
        for path in folder.glob("*/*.wav"):
            with contextlib.suppress(FileNotFoundError):  # a concurrent purge took it first
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    purged += 1
        return purged


def purge_personal_renders(cache_dir: Path, before: datetime) -> int:
    """`ivr purge`'s hook: delete caller-specific TTS renders (names, amounts) made before `before`."""
    return RenderCache(cache_dir).purge_personal(before)
