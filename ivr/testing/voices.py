"""Test-caller voices: text to 8 kHz telephone audio, the way a caller would say it.

English uses Festival's diphone voice (`text2wave`, Debian `festival` + `festvox-kallpc16k`): it
sounds far more like a person to an acoustic model trained on people than espeak-ng's formant
voice. Other languages use espeak-ng. Renders are cached by text and voice for the process.

English never falls back to espeak-ng: a caller whose voice changed with the machine's packages would
turn a recognition test's result into a fact about the machine, so a missing Festival is an error.
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import tempfile

import numpy as np
from numpy.typing import NDArray

from ivr.errors import IvrError
from ivr.media import load_telephony
from ivr.testing.peers import ESPEAK_NG, FESTIVAL, Peer


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


def _require(peer: Peer) -> str:
    found = peer.path
    if found is None:
        raise CallerVoiceError(f"no voice for the test caller: {peer.reason}")
    return found


@functools.lru_cache(maxsize=256)
def speak(text: str, language: str | None = None) -> NDArray[np.int16]:
    """`text` spoken in `language` (guessed from the script when None), as 8 kHz int16 mono."""
    language = language or script_language(text)
    with tempfile.TemporaryDirectory(prefix="ivr-caller-") as tmp:
        out = pathlib.Path(tmp) / "say.wav"
        command: list[str]
        stdin: str | None
        if language == "en":
            command, stdin = [_require(FESTIVAL), "-eval", "(voice_kal_diphone)", "-o", str(out)], text
        else:
            voice = ESPEAK_VOICES.get(language, language)
            command, stdin = [_require(ESPEAK_NG), "-v", voice, "-s", "150", "-w", str(out), text], None
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0 or not out.exists():
            raise CallerVoiceError(f"{command[0]} failed for {text!r}: {proc.stderr.strip()[:200]}")
        audio = load_telephony(out)
    # Half a second of silence after the words, so the engine's end-of-speech timer can run out.
    return np.concatenate([audio, np.zeros(4000, dtype=np.int16)])
