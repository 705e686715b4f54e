from __future__ import annotations

import numpy as np
import pytest

from ivr.media.tones import (
    RingbackStyle,
    beep,
    dtmf_frequencies,
    dtmf_tone,
    level_to_amplitude,
    music_on_hold,
    ringback,
    tone,
)
from ivr.testing.rtpprobe import dominant_frequency_hz, level_dbfs


@pytest.mark.parametrize(
    ("digit", "pair"),
    [
        ("1", (697.0, 1209.0)),
        ("5", (770.0, 1336.0)),
        ("9", (852.0, 1477.0)),
        ("0", (941.0, 1336.0)),
        ("*", (941.0, 1209.0)),
        ("#", (941.0, 1477.0)),
        ("a", (697.0, 1633.0)),
        ("D", (941.0, 1633.0)),
    ],
)
def test_dtmf_frequency_table(digit: str, pair: tuple[float, float]) -> None:
    assert dtmf_frequencies(digit) == pair


def test_unknown_key_is_named() -> None:
    with pytest.raises(ValueError, match="'x' is not a DTMF key"):
        dtmf_frequencies("x")


def test_tone_level_and_length() -> None:
    out = tone((1000.0,), 0.5, level_dbfs=-6.0)
    assert out.size == 4000
    assert np.abs(out).max() == pytest.approx(level_to_amplitude(-6.0), rel=0.01)
    assert abs(int(out[0])) < 50 and abs(int(out[-1])) < 50  # ramps: no click at the edges


def test_dtmf_tone_holds_both_frequencies() -> None:
    spectrum = np.abs(np.fft.rfft(dtmf_tone("6", 0.5).astype(np.float64)))
    freqs = np.fft.rfftfreq(4000, 1 / 8000)
    top_two = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert top_two == pytest.approx([770.0, 1477.0], abs=2.0)


@pytest.mark.parametrize(
    ("style", "frequencies", "on_s", "period_s"),
    [
        (RingbackStyle.CHINA, (450.0,), 1.0, 5.0),
        (RingbackStyle.EUROPE, (425.0,), 1.0, 5.0),
        (RingbackStyle.NORTH_AMERICA, (440.0, 480.0), 2.0, 6.0),
    ],
    ids=lambda v: v.value if isinstance(v, RingbackStyle) else None,
)
def test_ringback_cadence(
    style: RingbackStyle, frequencies: tuple[float, ...], on_s: float, period_s: float
) -> None:
    out = ringback(style)
    assert out.size == int(period_s * 8000)
    on = out[: int(on_s * 8000)]
    assert np.all(out[int(on_s * 8000) :] == 0)
    spectrum = np.abs(np.fft.rfft(on.astype(np.float64)))
    peaks = sorted(np.fft.rfftfreq(on.size, 1 / 8000)[np.argsort(spectrum)[-len(frequencies) :]])
    assert peaks == pytest.approx(list(frequencies), abs=2.0)


def test_beep_and_hold_music_are_gentle() -> None:
    assert dominant_frequency_hz(beep()) == pytest.approx(1000.0, abs=3.0)
    moh = music_on_hold()
    assert 4.0 < moh.size / 8000 < 10.0
    assert -40.0 < level_dbfs(moh) < -20.0
    assert abs(int(moh[-1])) < 20 and abs(int(moh[0])) < 20  # loops without a click
