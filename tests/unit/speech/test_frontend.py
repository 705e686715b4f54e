"""The front end sets an utterance's level once and repairs clipped peaks, without losing or adding audio."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from ivr.speech.frontend import FrontEndConfig, UtteranceFrontEnd, active_rms

RATE = 8000


def speechlike(seconds: float, dbfs: float, *, seed: int = 1) -> npt.NDArray[np.float64]:
    """Bursts of harmonics with short pauses, scaled so the bursts sit at `dbfs` RMS (may exceed int16)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) / k for k, f in enumerate((140, 280, 700, 1150), 1))
    envelope = (np.sin(2 * np.pi * 2.5 * t) > -0.3).astype(np.float64)
    x = np.asarray(voice * envelope, dtype=np.float64)
    return x * (32768 * 10 ** (dbfs / 20) / active_rms(x))


def int16(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def run(front: UtteranceFrontEnd, audio: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    out = [front.push(audio[k : k + 160]) for k in range(0, len(audio), 160)]
    return np.concatenate([*out, front.flush()])


def dbfs(x: npt.NDArray[np.int16]) -> float:
    return 20 * math.log10(active_rms(x.astype(np.float64)) / 32768)


@pytest.mark.parametrize("level", [-40.0, -33.0, -13.0, -6.0], ids=lambda d: f"{d:g}dBFS")
def test_the_utterance_comes_out_at_the_target_level_and_length(level: float) -> None:
    audio = int16(speechlike(2.0, level))
    out = run(UtteranceFrontEnd(FrontEndConfig(target_dbfs=-23.0)), audio)
    assert len(out) == len(audio)
    assert dbfs(out) == pytest.approx(-23.0, abs=1.0)


def test_nothing_is_released_until_the_level_is_measured_then_everything_in_order() -> None:
    audio = int16(speechlike(1.5, -35.0))
    front = UtteranceFrontEnd(FrontEndConfig(settle_s=0.5))
    released = [front.push(audio[k : k + 160]) for k in range(0, 3840, 160)]
    assert sum(len(r) for r in released) == 0 and front.gain_db is None, "0.48 s < settle_s"
    released.append(front.push(audio[3840:4000]))
    assert len(released[-1]) == 4000 and front.gain_db == pytest.approx(12.0, abs=1.0)
    rest = run(front, audio[4000:])
    assert front.gain_db is not None
    whole = np.concatenate([*released, rest])
    gain = 10 ** (front.gain_db / 20)
    assert np.allclose(whole, np.clip(np.round(audio * gain), -32768, 32767), atol=1)


def test_a_short_utterance_is_measured_on_what_there_is_at_its_end() -> None:
    audio = int16(speechlike(0.3, -35.0))
    out = run(UtteranceFrontEnd(FrontEndConfig(settle_s=0.8)), audio)
    assert len(out) == len(audio) and dbfs(out) == pytest.approx(-23.0, abs=1.0)


@pytest.mark.parametrize("level", [-30.0, -23.0, -16.0], ids=lambda d: f"{d:g}dBFS")
def test_a_caller_near_the_target_keeps_their_level(level: float) -> None:
    audio = int16(speechlike(1.0, level))
    front = UtteranceFrontEnd(FrontEndConfig(target_dbfs=-23.0, dead_band_db=8.0))
    assert np.array_equal(run(front, audio), audio) and front.gain_db == 0.0


def test_the_gain_is_bounded_so_line_noise_is_not_raised_to_speech_level() -> None:
    hiss = int16(np.random.default_rng(3).normal(0, 3, RATE))
    front = UtteranceFrontEnd(FrontEndConfig(max_gain_db=20.0))
    run(front, hiss)
    assert front.gain_db == pytest.approx(20.0)


def test_off_is_the_identity() -> None:
    audio = int16(speechlike(1.0, -6.0))
    front = UtteranceFrontEnd(FrontEndConfig(target_dbfs=None, declip=False))
    assert np.array_equal(run(front, audio), audio)


def test_clipped_peaks_are_redrawn_closer_to_the_true_waveform() -> None:
    true = speechlike(1.0, -12.0)
    ceiling = 0.7 * np.abs(true).max()
    clipped = int16(np.clip(true, -ceiling, ceiling))
    front = UtteranceFrontEnd(FrontEndConfig(target_dbfs=-20.0))
    repaired = run(front, clipped).astype(np.float64)
    assert front.clipping and front.gain_db is not None
    gain = 10 ** (front.gain_db / 20)
    on_ceiling = np.abs(clipped) >= ceiling - 1
    before = np.abs(clipped * gain - true * gain)[on_ceiling].mean()
    after = np.abs(repaired - true * gain)[on_ceiling].mean()
    assert after < 0.75 * before


def test_a_natural_peak_is_not_taken_for_clipping() -> None:
    audio = int16(speechlike(1.0, -15.0))
    front = UtteranceFrontEnd(FrontEndConfig(target_dbfs=None))
    out = run(front, audio)
    assert not front.clipping and np.array_equal(out, audio)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="min_gain_db"):
        FrontEndConfig(min_gain_db=10.0, max_gain_db=0.0)
    with pytest.raises(ValueError, match="settle_s"):
        FrontEndConfig(settle_s=-1.0)
