from __future__ import annotations

import pathlib
import wave

import numpy as np
import pytest

from ivr.media.errors import AudioFormatError
from ivr.voice.audio import load_prompt_audio


def test_a_44k_stereo_recording_becomes_8k_mono(tmp_path: pathlib.Path) -> None:
    t = np.arange(44100) / 44100
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    path = tmp_path / "greeting.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(np.column_stack([tone, tone]).astype("<i2").tobytes())
    audio = load_prompt_audio(path)
    assert audio.dtype == np.int16 and abs(audio.size - 8000) <= 2
    spectrum = np.abs(np.fft.rfft(audio[1000:7000].astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / 6000 - 440) < 3


def test_other_formats_need_sox(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "greeting.flac"
    path.write_bytes(b"fLaC")
    monkeypatch.setattr("ivr.voice.audio.shutil.which", lambda _name: None)
    with pytest.raises(AudioFormatError, match=r"greeting\.flac: only WAV is read without `sox`"):
        load_prompt_audio(path)
