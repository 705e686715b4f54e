"""Recorded prompt files → 8 kHz int16 mono, once, at load.

WAV in any common layout (PCM 8-32 bit, float, A-law, µ-law, any rate and channel count) is read by
`ivr.media.wav`; other formats (FLAC, Ogg, MP3, AIFF...) are converted by the `sox` program when it
is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.media.errors import AudioFormatError
from ivr.media.resample import TELEPHONY_RATE_HZ
from ivr.media.wav import load_telephony


def _convert_with_sox(path: Path) -> NDArray[np.int16]:
    sox = shutil.which("sox")
    if sox is None:
        raise AudioFormatError(
            f"{path}: only WAV is read without `sox` (apt install sox, or deliver the prompt as WAV)"
        )
    cmd = [sox, str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-c", "1",
           "-r", str(TELEPHONY_RATE_HZ), "-"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AudioFormatError(f"{path}: sox cannot read it: {done.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(done.stdout, dtype="<i2").astype(np.int16)


def load_prompt_audio(path: Path) -> NDArray[np.int16]:
    """A recorded prompt in any common format and rate → 8 kHz int16 mono."""
    if path.suffix.lower() == ".wav":
        return load_telephony(path)
    return _convert_with_sox(path)
