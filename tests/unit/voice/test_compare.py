from __future__ import annotations

import numpy as np

from ivr.media.g711 import PCMU
from ivr.voice import audio_similarity


def speechlike(seed: int, n: int = 8000) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    envelope = np.abs(np.sin(np.arange(n) / 400.0))
    return (rng.normal(0, 6000, n) * envelope).clip(-32768, 32767).astype(np.int16)


def test_same_audio_delayed_and_quieter_matches_with_its_lag() -> None:
    a = speechlike(1)
    delayed = np.concatenate([np.zeros(800, np.int16), (a // 3).astype(np.int16), np.zeros(400, np.int16)])
    match = audio_similarity(delayed, a)
    assert match.score > 0.99 and match.lag_samples == 800 and match.lag_s == 0.1
    assert audio_similarity(a, delayed).lag_samples == -800


def test_g711_round_trip_still_matches() -> None:
    a = speechlike(2)
    assert audio_similarity(PCMU.decode(PCMU.encode(a)), a).score > 0.99


def test_different_audio_does_not_match() -> None:
    assert audio_similarity(speechlike(3), speechlike(4)).score < 0.3


def test_delay_beyond_the_search_window_is_not_found() -> None:
    a = speechlike(5)
    late = np.concatenate([np.zeros(4000, np.int16), a])
    assert audio_similarity(late, a, max_lag_s=0.25).score < 0.3
    assert audio_similarity(late, a, max_lag_s=1.0).score > 0.99


def test_silence() -> None:
    silent = np.zeros(100, np.int16)
    assert audio_similarity(silent, silent).score == 1.0
    assert audio_similarity(silent, speechlike(6)).score == 0.0
