from __future__ import annotations

import pathlib
import struct

import numpy as np
import pytest

from ivr.media.errors import AudioFormatError
from ivr.media.g711 import PCMA, PCMU
from ivr.media.goertzel import DtmfDetector
from ivr.media.resample import from_telephony, resample, to_telephony
from ivr.media.tones import tone
from ivr.media.wav import load_telephony, read_wav, write_wav
from ivr.testing.rtpprobe import dominant_frequency_hz


def _keys(audio: np.ndarray) -> str:
    return "".join(key for key, _ in DtmfDetector().feed(audio))


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_resampling_to_8k_keeps_pitch_and_duration(rate: int) -> None:
    source = tone((700.0,), 0.5, rate_hz=rate)
    out = to_telephony(source, rate)
    assert out.dtype == np.int16
    assert abs(out.size - 4000) <= 1
    assert dominant_frequency_hz(out) == pytest.approx(700.0, abs=5.0)


def test_resampling_removes_content_above_the_new_nyquist() -> None:
    out = to_telephony(tone((6000.0,), 0.5, rate_hz=48000), 48000)
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) < 50  # a -10 dBFS tone would be ~7300


def test_upsampling_for_a_16k_recognizer() -> None:
    out = from_telephony(tone((440.0,), 0.25), 16000)
    assert out.size == 4000
    assert dominant_frequency_hz(out, 16000) == pytest.approx(440.0, abs=5.0)


def test_resample_rejects_bad_input() -> None:
    with pytest.raises(AudioFormatError, match="bad sample rate: 0 Hz"):
        resample(np.zeros(10, np.int16), 0, 8000)
    with pytest.raises(AudioFormatError, match="expects mono audio"):
        resample(np.zeros((10, 2), np.int16), 16000, 8000)


def test_fixture_wavs_load_as_8k_mono_with_their_keys(media_data: pathlib.Path) -> None:
    for name, keys in [
        ("dtmf_keys_8k.wav", "123A456B789C*0#D"),
        ("dtmf_159_44k_stereo.wav", "159#"),
        ("dtmf_42_8bit.wav", "42"),
    ]:
        audio = load_telephony(media_data / name)
        assert audio.dtype == np.int16 and audio.ndim == 1, name
        assert _keys(audio) == keys, name


def test_read_wav_keeps_channels_and_rate(media_data: pathlib.Path) -> None:
    wav = read_wav(media_data / "dtmf_159_44k_stereo.wav")
    assert wav.rate_hz == 44100
    assert wav.samples.shape[1] == 2
    left, right = wav.samples[:, 0].astype(np.int32), wav.samples[:, 1].astype(np.int32)
    assert np.abs(right - left // 2).max() <= 1


def test_write_then_read_round_trip(tmp_path: pathlib.Path) -> None:
    audio = tone((1000.0,), 0.1)
    write_wav(tmp_path / "t.wav", audio)
    wav = read_wav(tmp_path / "t.wav")
    assert wav.rate_hz == 8000
    assert np.array_equal(wav.samples[:, 0], audio)


def _riff(tag: int, channels: int, rate: int, bits: int, data: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("tag", "bits", "encode"),
    [
        (7, 8, PCMU.encode),
        (6, 8, PCMA.encode),
        (1, 24, lambda a: b"".join((int(s) * 256).to_bytes(3, "little", signed=True) for s in a)),
        (1, 32, lambda a: (a.astype("<i4") << 16).tobytes()),
        (3, 32, lambda a: (a.astype("<f4") / 32767.0).tobytes()),
    ],
    ids=["ulaw", "alaw", "pcm24", "pcm32", "float32"],
)
def test_telephony_and_wide_formats_are_read(tmp_path: pathlib.Path, tag: int, bits: int, encode) -> None:  # type: ignore[no-untyped-def]
    audio = tone((941.0, 1336.0), 0.1)
    path = tmp_path / "x.wav"
    path.write_bytes(_riff(tag, 1, 8000, bits, encode(audio)))
    loaded = load_telephony(path)
    assert loaded.size == audio.size
    assert np.abs(loaded.astype(np.int32) - audio).max() <= 600  # G.711 quantisation at most
    assert _keys(loaded) == "0"


def test_bad_wavs_name_the_file_and_problem(tmp_path: pathlib.Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(AudioFormatError, match=r"junk.wav: not a WAV file"):
        read_wav(junk)
    adpcm = tmp_path / "adpcm.wav"
    adpcm.write_bytes(_riff(2, 1, 8000, 4, b"\x00" * 100))
    with pytest.raises(AudioFormatError, match=r"adpcm.wav: WAV format tag 2 is not supported"):
        read_wav(adpcm)
    with pytest.raises(AudioFormatError, match=r"missing.wav: cannot read WAV file"):
        read_wav(tmp_path / "missing.wav")
