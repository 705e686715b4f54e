from __future__ import annotations

import pathlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.media.wav import read_wav
from ivr.recording.stereo import WINDOW_SAMPLES, StereoWavWriter, wav_header


def _read(path: pathlib.Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert int.from_bytes(data[40:44], "little") == len(data) - 44
    return np.frombuffer(data[44:], dtype="<i2").reshape(-1, 2)


def test_header_is_a_stereo_8khz_pcm16_header() -> None:
    header = wav_header(320)
    assert len(header) == 44
    assert header[22:24] == (2).to_bytes(2, "little") and header[24:28] == (8000).to_bytes(4, "little")
    assert header[34:36] == (16).to_bytes(2, "little")


def test_frames_land_on_their_channel_and_gaps_are_silence(tmp_path: pathlib.Path) -> None:
    writer = StereoWavWriter(tmp_path / "day" / "call.wav")
    writer.put(0, 0, np.full(160, 100, dtype=np.int16))
    writer.put(1, 80, np.full(160, -200, dtype=np.int16))
    writer.put(0, 400, np.full(10, 7, dtype=np.int16))
    assert writer.close(500) == 500 * 4
    audio = _read(tmp_path / "day" / "call.wav")
    assert audio.shape == (500, 2)
    assert (audio[:160, 0] == 100).all() and (audio[160:400, 0] == 0).all() and (audio[400:410, 0] == 7).all()
    assert (audio[:80, 1] == 0).all() and (audio[80:240, 1] == -200).all() and (audio[240:, 1] == 0).all()


def test_a_long_recording_streams_through_the_window_and_late_frames_are_counted(tmp_path: pathlib.Path) -> None:
    writer = StereoWavWriter(tmp_path / "long.wav")
    ramp = np.arange(160, dtype=np.int16)
    for i in range(500):  # 10 s on the left
        writer.put(0, i * 160, ramp)
    assert writer.flushed >= 500 * 160 - WINDOW_SAMPLES
    writer.put(1, 0, ramp)  # far too late
    assert writer.late_samples == 160
    writer.put(1, 30 * 8000, ramp)  # a frame 20 s ahead: everything between is silence
    writer.close(31 * 8000)
    audio = _read(tmp_path / "long.wav")
    assert audio.shape == (31 * 8000, 2)
    assert (audio[: 500 * 160, 0].reshape(-1, 160) == ramp).all()
    assert (audio[500 * 160 :, 0] == 0).all()
    assert (audio[30 * 8000 : 30 * 8000 + 160, 1] == ramp).all() and not audio[: 30 * 8000, 1].any()
    assert read_wav(tmp_path / "long.wav").rate_hz == 8000


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6 * 8000), st.integers(1, 400)), max_size=40))
def test_any_frames_within_the_window_come_out_where_they_were_put(frames: list[tuple[int, int, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "f.wav"
        writer = StereoWavWriter(path)
        expected = np.zeros((7 * 8000, 2), dtype=np.int16)
        frames = sorted(frames, key=lambda f: f[1])  # in time order: none falls behind the window
        for n, (channel, position, length) in enumerate(frames):
            samples = np.full(length, n + 1, dtype=np.int16)
            writer.put(channel, position, samples)
            expected[position : position + length, channel] = samples
        writer.close(7 * 8000)
        assert writer.late_samples == 0
        assert (_read(path) == expected).all()
