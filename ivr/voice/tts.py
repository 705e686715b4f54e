"""Text-to-speech behind one small protocol: text, voice and rate in, 8 kHz int16 mono out.

Two engines, both over espeak-ng:

- `EspeakNgEngine` (the default) runs the `espeak-ng` program once per text. Each render is its own
  process, so renders run in parallel from a bounded thread pool without sharing any state.
- `Pyttsx3Engine` goes through pyttsx3's espeak driver (`save_to_file`). Measured with pyttsx3 2.99
  here, that driver is unfit for a server's worker threads: it drives one process-wide libespeak-ng
  instance with one global callback, so two renders from two threads crashed the interpreter
  (SIGSEGV); its `runAndWait` polls every 10 ms; and it prints "Audio saved to ..." on stdout for
  every file. It is kept, serialised by a lock, for machines where only the library is present.

Synthesis is slow work: callers run `synthesize` in a bounded executor, never on the event loop.
"""

from __future__ import annotations

import contextlib
import enum
import io
import shutil
import subprocess
import tempfile
import threading
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


class EngineKind(enum.Enum):
    ESPEAK_NG = "espeak-ng"
    PYTTSX3 = "pyttsx3"


def _parse_voice_list(listing: str) -> frozenset[str]:
    """`espeak-ng --voices` output → accepted names: language codes, voice files and their basenames."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names.update({cols[1].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()})
    return frozenset(names)


class EspeakNgEngine:
    """The `espeak-ng` program, one process per render (stdin in, WAV on stdout)."""

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


class Pyttsx3Engine:
    """pyttsx3's espeak driver; one render at a time per process (see the module notes)."""

    _lock = threading.Lock()
    """libespeak-ng under pyttsx3 is a single process-wide instance: this guards that one resource."""

    def __init__(self) -> None:
        self._voices: frozenset[str] | None = None

    @property
    def engine_id(self) -> str:
        from importlib.metadata import version

        return f"pyttsx3 {version('pyttsx3')} espeak"

    def voices(self) -> frozenset[str]:
        if self._voices is None:
            import pyttsx3

            with self._lock:
                listed = pyttsx3.init("espeak").getProperty("voices")
            names: set[str] = set()
            for v in listed:
                names.update({str(v.id).lower(), str(v.id).rsplit("/", 1)[-1].lower()})
                names.update(str(lang).lower() for lang in (v.languages or ()))
            self._voices = frozenset(names)
        return self._voices

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
        import pyttsx3

        with self._lock, tempfile.TemporaryDirectory(prefix="ivr-tts-") as tmp:
            out = Path(tmp) / "render.wav"
            try:
                engine = pyttsx3.init("espeak")
                engine.setProperty("voice", voice)
                engine.setProperty("rate", rate_wpm)
                engine.save_to_file(text, str(out))
                with contextlib.redirect_stdout(io.StringIO()):
                    engine.runAndWait()
            except (RuntimeError, ValueError, OSError) as exc:
                raise TtsError(f"pyttsx3 voice {voice!r} rendering {text[:40]!r}: {exc}") from exc
            return _read_render(out, f"pyttsx3 voice {voice!r}", text)


def _read_render(path: Path, what: str, text: str) -> NDArray[np.int16]:
    try:
        return load_telephony(path)
    except AudioFormatError as exc:
        raise TtsError(f"{what} rendering {text[:40]!r} wrote no usable audio: {exc}") from None


def make_engine(kind: EngineKind = EngineKind.ESPEAK_NG) -> TtsEngine:
    if kind is EngineKind.PYTTSX3:
        return Pyttsx3Engine()
    return EspeakNgEngine()
