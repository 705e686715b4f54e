"""The answering-machine detector on synthetic audio: each rule, its decision time, the beep."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.media.tones import RingbackStyle, beep, ringback, silence
from ivr.outbound.amd import AmdConfig, AmdDetector, AmdReason, AmdVerdict, detect

RATE = 8000


def syllables(count: int, *, length_s: float = 0.25, gap_s: float = 0.08, seed: int = 1) -> NDArray[np.int16]:
    """Voiced, speech-like bursts: a gliding 110-160 Hz pulse train shaped by two formants."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(count):
        n = int(length_s * RATE)
        t = np.arange(n) / RATE
        f0 = 110 + 50 * np.sin(2 * np.pi * rng.uniform(1, 3) * t)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 25))
        formants = sum(np.sin(2 * np.pi * f * t) for f in (rng.uniform(500, 800), rng.uniform(1000, 1800)))
        envelope = np.sin(np.pi * t / length_s) ** 0.5
        parts.append(3000 * envelope * voiced * (1 + 0.3 * formants) / 4)
        parts.append(np.zeros(int(gap_s * RATE)))
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


def test_short_greeting_then_waiting_is_a_person() -> None:
    audio = np.concatenate([silence(0.5), syllables(2), silence(4.0)])
    decision = detect(audio)
    assert (decision.verdict, decision.reason) == (AmdVerdict.HUMAN, AmdReason.HUMAN_GREETING)
    # decided one after-greeting silence after the greeting ended, not at the end of analysis
    greeting_end_ms = 500 + 2 * 330
    assert 500 + 1000 < decision.at_ms <= greeting_end_ms + 1000 + 20


def test_a_greeting_that_talks_on_is_a_machine() -> None:
    decision = detect(np.concatenate([silence(0.3), syllables(12, gap_s=0.04)]))
    assert decision.verdict is AmdVerdict.MACHINE
    assert decision.reason in (AmdReason.LONG_GREETING, AmdReason.MAX_WORDS)
    assert decision.at_ms < 3500  # before the 12 syllables end


def test_many_separate_words_are_a_machine() -> None:
    config = AmdConfig(greeting_ms=10_000)
    decision = detect(np.concatenate([silence(0.2), syllables(5, gap_s=0.3)]), config)
    assert (decision.verdict, decision.reason, decision.words) == (AmdVerdict.MACHINE, AmdReason.MAX_WORDS, 4)


@pytest.mark.parametrize("style", list(RingbackStyle))
def test_ringback_after_answer_is_no_person(style: RingbackStyle) -> None:
    decision = detect(np.tile(ringback(style), 2))
    assert (decision.verdict, decision.reason, decision.at_ms) == (AmdVerdict.MACHINE, AmdReason.INITIAL_SILENCE, 2500)


def test_dead_air_is_initial_silence() -> None:
    noise = np.random.default_rng(3).normal(0, 60, 6 * RATE).astype(np.int16)
    decision = detect(noise)
    assert (decision.verdict, decision.reason, decision.at_ms) == (AmdVerdict.MACHINE, AmdReason.INITIAL_SILENCE, 2500)


def test_a_beep_is_reported_after_the_decision() -> None:
    detector = AmdDetector()
    audio = np.concatenate([silence(0.2), syllables(10, gap_s=0.04), silence(0.3), beep(1000.0, 0.4), silence(1.0)])
    decisions = [detector.feed(audio[i : i + 160]) for i in range(0, audio.size - 159, 160)]
    made = [d for d in decisions if d is not None]
    assert len(made) == 1 and made[0].verdict is AmdVerdict.MACHINE
    beep_start_ms = 200 + 10 * 290 + 300
    assert detector.beep_at_ms is not None and beep_start_ms < detector.beep_at_ms <= beep_start_ms + 200


def test_a_beep_alone_is_a_machine() -> None:
    decision = detect(np.concatenate([silence(0.3), beep(1400.0, 0.5), silence(3.0)]))
    assert (decision.verdict, decision.reason) == (AmdVerdict.MACHINE, AmdReason.BEEP)
    assert decision.at_ms <= 300 + 200


def test_nothing_decided_is_not_sure_human() -> None:
    config = AmdConfig(after_greeting_silence_ms=4000, greeting_ms=10_000, maximum_words=50)
    decision = detect(np.concatenate([silence(0.2), syllables(1), silence(0.6), syllables(1), silence(6.0)]), config)
    assert (decision.verdict, decision.reason, decision.at_ms) == (AmdVerdict.HUMAN, AmdReason.NOT_SURE, 5000)


def test_frames_must_be_20_ms() -> None:
    with pytest.raises(ValueError, match="AMD frames are 160 samples, got 80"):
        AmdDetector().feed(np.zeros(80, dtype=np.int16))
