from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.media.goertzel import DtmfDetector, goertzel_basis, tone_powers
from ivr.media.tones import dtmf_frequencies, dtmf_sequence, music_on_hold, ringback, silence, tone
from ivr.media.wav import load_telephony

ALL_KEYS = "123A456B789C*0#D"


def detect(audio: np.ndarray, chunk: int = 160) -> list[tuple[str, int]]:
    """Feed the detector the way a call does: one RTP frame at a time."""
    detector = DtmfDetector()
    found: list[tuple[str, int]] = []
    for start in range(0, audio.size, chunk):
        found += detector.feed(audio[start : start + chunk])
    return found


def keys(audio: np.ndarray, chunk: int = 160) -> str:
    return "".join(k for k, _ in detect(audio, chunk))


@pytest.fixture
def keypad_wav(media_data: pathlib.Path) -> np.ndarray:
    return load_telephony(media_data / "dtmf_keys_8k.wav")


def test_tone_powers_match_sine_energy() -> None:
    basis = goertzel_basis((697.0, 1209.0), 160, 8000)
    window = tone((697.0,), 0.02, ramp_s=0.0).astype(np.float64)[None, :]
    powers = tone_powers(window, basis)[0]
    assert powers[0] == pytest.approx(float(np.sum(window**2)), rel=0.02)
    assert powers[1] < powers[0] / 100


def test_every_key_of_the_generated_wav_is_found_once_in_order(keypad_wav: np.ndarray) -> None:
    found = detect(keypad_wav)
    assert "".join(k for k, _ in found) == ALL_KEYS
    # each key is confirmed 40 ms into its 80 ms tone (plus window alignment), key i starts at i*160 ms
    for index, (_, offset) in enumerate(found):
        assert 0.035 <= offset / 8000 - index * 0.16 <= 0.06


@pytest.mark.parametrize("chunk", [80, 160, 240, 1000, 13], ids=lambda c: f"chunk{c}")
def test_result_does_not_depend_on_how_audio_is_chunked(keypad_wav: np.ndarray, chunk: int) -> None:
    assert keys(keypad_wav, chunk) == ALL_KEYS


@pytest.mark.parametrize("gain_db", [0.0, -10.0, -20.0, -26.0, 6.0], ids=lambda g: f"{g:+.0f}dB")
def test_level_shifted_wav(keypad_wav: np.ndarray, gain_db: float) -> None:
    shifted = np.clip(keypad_wav * 10 ** (gain_db / 20), -32768, 32767).astype(np.int16)
    assert keys(shifted) == ALL_KEYS


@pytest.mark.parametrize("snr_db", [30.0, 20.0, 15.0], ids=lambda s: f"snr{s:.0f}")
def test_noisy_wav(keypad_wav: np.ndarray, snr_db: float) -> None:
    rng = np.random.default_rng(4733)
    tone_rms = 10 ** (-10 / 20) * 32767  # two tones at -10 dBFS each: rms of the pair = the peak of one
    noise = rng.normal(0.0, tone_rms / 10 ** (snr_db / 20), keypad_wav.size)
    assert keys(np.clip(keypad_wav + noise, -32768, 32767).astype(np.int16)) == ALL_KEYS


def test_too_quiet_keys_are_ignored(keypad_wav: np.ndarray) -> None:
    assert keys((keypad_wav * 10 ** (-35 / 20)).astype(np.int16)) == ""


def test_long_press_counts_once_and_repeats_count_again() -> None:
    audio = np.concatenate(
        [dtmf_sequence("5", tone_s=1.5, gap_s=0.05), dtmf_sequence("55", tone_s=0.045, gap_s=0.045)]
    )
    assert keys(audio) == "555"


def test_a_short_dropout_inside_a_press_is_not_a_second_key() -> None:
    press = dtmf_sequence("7", tone_s=0.3, gap_s=0.0)
    press[1200:1280] = 0  # a 10 ms break, which Q.24 says must not split a key
    assert keys(press) == "7"


@pytest.mark.parametrize("tone_s", [0.015, 0.023], ids=["15ms", "23ms"])
def test_tones_shorter_than_the_minimum_are_rejected(tone_s: float) -> None:
    assert keys(dtmf_sequence("1234", tone_s=tone_s, gap_s=0.06)) == ""


def test_forty_millisecond_tones_are_accepted() -> None:
    assert keys(dtmf_sequence("1234", tone_s=0.04, gap_s=0.04)) == "1234"


@pytest.mark.parametrize(
    ("row_db", "column_db", "accepted"),
    [(-10, -10, True), (-16, -10, True), (-10, -13, True), (-22, -10, False), (-10, -18, False)],
    ids=["flat", "normal6", "reverse3", "normal12-rejected", "reverse8-rejected"],
)
def test_twist_limits(row_db: float, column_db: float, accepted: bool) -> None:
    low, high = dtmf_frequencies("9")
    audio = np.concatenate(
        [tone((low,), 0.1, level_dbfs=row_db) + tone((high,), 0.1, level_dbfs=column_db), silence(0.05)]
    )
    assert keys(audio) == ("9" if accepted else "")


def test_single_tones_music_and_ringback_are_not_keys() -> None:
    assert keys(tone((697.0,), 0.5)) == ""
    assert keys(tone((1209.0,), 0.5)) == ""
    assert keys(music_on_hold()) == ""
    assert keys(ringback()) == ""
    assert keys(tone((697.0, 770.0), 0.5)) == ""  # two rows at once is not a key


def test_keys_inside_a_voice_like_band_mix_are_rejected() -> None:
    rng = np.random.default_rng(1)
    harmonics = sum(tone((150.0 * k,), 1.0, level_dbfs=-18.0).astype(np.float64) for k in range(1, 20))
    voiced = np.clip(harmonics + rng.normal(0, 300, 8000), -32768, 32767).astype(np.int16)
    assert keys(voiced) == ""


class FullPathDetector(DtmfDetector):
    """Every chunk through the windows' energy test, never the quiet shortcut."""

    def feed(self, audio: np.ndarray) -> list[tuple[str, int]]:
        self._pending_energy = float("inf")  # as if what is pending were loud
        return DtmfDetector.feed(self, audio)


@settings(max_examples=40)
@given(
    pieces=st.lists(st.tuples(st.sampled_from(["quiet", "noise", "key", "edge"]), st.integers(1, 900)), max_size=12),
    chunk=st.sampled_from([13, 80, 160, 240, 1000]),
    seed=st.integers(0, 2**16),
)
def test_quiet_chunks_skip_the_math_and_find_the_same_keys_at_the_same_offsets(
    pieces: list[tuple[str, int]], chunk: int, seed: int
) -> None:
    """Quiet stretches take `_feed_quiet`; a detector with that shortcut off must report the same."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind, samples in pieces:
        if kind == "quiet":  # line noise while the caller listens: the shortcut's case
            parts.append(rng.integers(-300, 300, samples).astype(np.int16))
        elif kind == "edge":  # a steady level near the energy floor: the shortcut must not take it whole
            parts.append(np.full(samples, 400, dtype=np.int16))
        elif kind == "noise":
            parts.append(rng.integers(-3000, 3000, samples).astype(np.int16))
        else:
            parts.append(dtmf_sequence(ALL_KEYS[samples % len(ALL_KEYS)]))
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    full = FullPathDetector()
    expected: list[tuple[str, int]] = []
    for start in range(0, audio.size, chunk):
        expected += full.feed(audio[start : start + chunk])
    detector, found = DtmfDetector(), []
    for start in range(0, audio.size, chunk):
        found += detector.feed(audio[start : start + chunk])
        pending, energy = detector._pending, detector._pending_energy
        assert energy is None or energy == pytest.approx(float(pending @ pending))  # what the shortcut trusts
    assert found == expected
