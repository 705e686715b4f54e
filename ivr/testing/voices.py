"""Test-caller voices: text to 8 kHz telephone audio, the way a caller would say it.

English uses Festival's diphone voice (`text2wave`, Debian `festival` + `festvox-kallpc16k`): it
sounds far more like a person to an acoustic model trained on people than espeak-ng's formant
voice. Other languages use espeak-ng. Renders are cached by text and voice for the process.
"""

from __future__ import annotations

import functools
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
from numpy.typing import NDArray

from ivr.errors import IvrError
from ivr.media import load_telephony


class CallerVoiceError(IvrError):
    """The caller's speech could not be synthesized (a missing program or voice)."""


ESPEAK_VOICES = {"cmn": "cmn-latn-pinyin", "yue": "yue", "hak": "hak", "ko": "ko", "en": "en-us"}


def script_language(text: str) -> str:
    """Chinese characters → cmn, Hangul → ko, otherwise English."""
    for char in text:
        if "\u4e00" <= char <= "\u9fff":
            return "cmn"
        if "\uac00" <= char <= "\ud7af":
            return "ko"
    return "en"


@functools.lru_cache(maxsize=256)
def speak(text: str, language: str | None = None) -> NDArray[np.int16]:
    """`text` spoken in `language` (guessed from the script when None), as 8 kHz int16 mono."""
    language = language or script_language(text)
    with tempfile.TemporaryDirectory(prefix="ivr-caller-") as tmp:
        out = pathlib.Path(tmp) / "say.wav"
        if language == "en" and shutil.which("text2wave"):
            command = ["text2wave", "-eval", "(voice_kal_diphone)", "-o", str(out)]
            stdin: str | None = text
        elif shutil.which("espeak-ng"):
            voice = ESPEAK_VOICES.get(language, language)
            command, stdin = ["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], None
        else:
            raise CallerVoiceError("no TTS for the test caller: apt install festival festvox-kallpc16k espeak-ng")
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0 or not out.exists():
            raise CallerVoiceError(f"{command[0]} failed for {text!r}: {proc.stderr.strip()[:200]}")
        audio = load_telephony(out)
    # Half a second of silence after the words, so the engine's end-of-speech timer can run out.
    return np.concatenate([audio, np.zeros(4000, dtype=np.int16)])
