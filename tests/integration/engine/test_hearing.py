"""The live tests' ear (`hearing.locate`): a sender's stall mid-prompt costs the second it falls in, not the rest
of the prompt, and different audio after a shared opening is still told apart."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.integration.engine.hearing import RATE_HZ, SAME, locate

SECONDS = 7


def speech_like(seed: int) -> NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    t = np.arange(SECONDS * RATE_HZ) / RATE_HZ
    return (rng.standard_normal(t.size) * 3000 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t))).astype(np.int16)


def silence(seconds: float) -> NDArray[np.int16]:
    return np.zeros(int(seconds * RATE_HZ), np.int16)


@pytest.mark.parametrize("stall_s", [0.08, 0.15, 0.25])
def test_a_stall_mid_prompt_costs_one_second(stall_s: float) -> None:
    prompt = speech_like(1)
    cut = int(2.5 * RATE_HZ)
    heard = np.concatenate([silence(0.5), prompt[:cut], silence(stall_s), prompt[cut:], silence(0.5)])
    found = locate(heard, prompt)
    assert sum(score < SAME for score in found.chunk_scores) == 1
    assert found.score >= SAME


def test_other_audio_after_the_same_opening_is_not_the_prompt() -> None:
    prompt, other = speech_like(1), speech_like(2)
    cut = int(2.5 * RATE_HZ)
    heard = np.concatenate([silence(0.5), prompt[:cut], other[cut:]])
    assert locate(heard, prompt).score < 0.5
