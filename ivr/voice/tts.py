"""Text-to-speech behind one small protocol: text, voice and rate in, 8 kHz int16 mono out.

`EspeakNgEngine` runs the `espeak-ng` program once per text (text on stdin, WAV to a temporary
file). Each render is its own process, so renders run in parallel from a bounded thread pool with
no shared state, and a crash in the synthesizer cannot take the engine down with it.

Why not pyttsx3 (2.99, espeak driver, `save_to_file`)? Measured here: it drives one process-wide
libespeak-ng instance in asynchronous "retrieval" mode with one global callback. Renders from two
worker threads crashed the interpreter (SIGSEGV). Serialised behind a lock it still failed under
load: with other threads busy, a render's end-of-message callback arrived after `runAndWait` had
returned, writing the previous request's file late, leaving the current one empty, and after some
150 renders the process segfaulted. It also polls every 10 ms and prints "Audio saved to ..." on
stdout for each file. The same voices through the CLI give the same audio without any of that.

Synthesis is slow work: callers run `synthesize` in a bounded executor, never on the event loop.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.media.errors import AudioFormatError
from ivr.media.wav import load_telephony
from ivr.voice.errors import TtsError


class TtsEngine(Protocol):
    """Renders text in a voice; `engine_id` goes into cache keys so an engine upgrade re-renders."""

    @property
    def engine_id(self) -> str: ...

    def voices(self) -> frozenset[str]:
        """Voice names this engine accepts (lower case)."""
        ...

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
        """8 kHz int16 mono audio of `text`; raises `TtsError` naming engine, voice and text."""
        ...


def _parse_voice_list(listing: str) -> frozenset[str]:
    """`espeak-ng --voices` output → accepted names: language codes, voice files and their basenames."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names.update({cols[1].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()})
    return frozenset(names)


class EspeakNgEngine:
    """The `espeak-ng` program, one process per render."""

    def __init__(self, executable: str = "espeak-ng", *, timeout_s: float = 30.0) -> None:
        self._executable = executable
        self._timeout_s = timeout_s
        self._engine_id: str | None = None
        self._voices: frozenset[str] | None = None

    def _run(self, args: list[str], text: str | None = None) -> bytes:
        exe = shutil.which(self._executable)
        if exe is None:
            raise TtsError(f"TTS program '{self._executable}' not found (apt install espeak-ng)")
        try:
            done = subprocess.run(
                [exe, *args],
                input=text.encode("utf-8") if text is not None else None,
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TtsError(f"{self._executable} {' '.join(args)}: no answer in {self._timeout_s} s") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise TtsError(f"{self._executable} {' '.join(args)} failed ({done.returncode}): {err}")
        return done.stdout

    @property
    def engine_id(self) -> str:
        if self._engine_id is None:
            banner = self._run(["--version"]).decode(errors="replace")
            version = banner.split(":", 1)[-1].split()[0] if ":" in banner else banner.strip()
            self._engine_id = f"espeak-ng {version}"
        return self._engine_id

    def voices(self) -> frozenset[str]:
        if self._voices is None:
            self._voices = _parse_voice_list(self._run(["--voices"]).decode(errors="replace"))
        return self._voices

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
        with tempfile.TemporaryDirectory(prefix="ivr-tts-") as tmp:
            out = Path(tmp) / "render.wav"
            self._run(["-v", voice, "-s", str(rate_wpm), "-b", "1", "-w", str(out), "--stdin"], text)
            return _read_render(out, f"espeak-ng voice {voice!r}", text)


def _read_render(path: Path, what: str, text: str) -> NDArray[np.int16]:
    try:
        return load_telephony(path)
    except AudioFormatError as exc:
        raise TtsError(f"{what} rendering {text[:40]!r} wrote no usable audio: {exc}") from None
