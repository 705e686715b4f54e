"""A caller with low formants: the first doubtful utterance is decoded again with a frequency warp (VTLN)."""

from __future__ import annotations

import dataclasses
import pathlib
import wave

import numpy as np
import numpy.typing as npt
import pytest

from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.pocketsphinx_engine import WARPS, PocketSphinxModel, PocketSphinxRecognizer

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[3]


def clip(name: str, formants: float = 1.0) -> npt.NDArray[np.int16]:
    """A test clip; `formants` < 1 resamples it so every frequency is that much lower (and it is slower)."""
    import soxr

    with wave.open(str(ROOT / "tests" / "data" / "speech" / name), "rb") as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()
    if formants == 1.0:
        return audio
    low = soxr.resample(audio.astype(np.float32), 8000 * formants, 8000)
    return np.asarray(low, dtype=np.float32).clip(-32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def phrases() -> tuple[str, ...]:
    return load_flow_intents(ROOT / "flows" / "hotline.yaml").recognizer_phrases("en")


def hear(rec: PocketSphinxRecognizer, audio: npt.NDArray[np.int16]) -> tuple[str, float]:
    for i in range(0, len(audio), 1600):
        rec.accept(audio[i : i + 1600])
    result = rec.finish()
    return result.text, result.confidence


def recognizer(phrases: tuple[str, ...], *, warps: tuple[float, ...] = WARPS) -> PocketSphinxRecognizer:
    rec = PocketSphinxRecognizer(dataclasses.replace(PocketSphinxModel.load("en"), warps=warps))
    rec.set_phrases(phrases)
    return rec


@pytest.mark.parametrize("name", ["en_pay_premium.wav", "en_policy_question.wav"])
def test_low_formants_are_heard_after_the_warp_search_and_the_warp_holds_for_the_call(
    phrases: tuple[str, ...], name: str
) -> None:
    low = clip(name, formants=0.85)
    unwarped_text, unwarped_confidence = hear(recognizer(phrases, warps=()), low)
    rec = recognizer(phrases)
    text, confidence = hear(rec, low)
    expected = {"en_pay_premium.wav": "i want to pay my premium",
                "en_policy_question.wav": "i have a question about my policy"}[name]
    assert unwarped_text != expected and unwarped_confidence < 0.2
    assert text == expected and confidence >= 0.6
    state = rec.acoustic_state()
    assert state is not None and state.endswith(f";warp={WARPS[0]:g}")
    # the next utterance of the call (another pooled recognizer) starts warped, with no search
    later = recognizer(phrases)
    later.restore_acoustic_state(state)
    assert hear(later, low) == (text, pytest.approx(confidence, abs=0.15))
    assert later.acoustic_state() is not None and later.acoustic_state().endswith(f";warp={WARPS[0]:g}")


def test_a_clear_first_utterance_settles_the_call_unwarped(phrases: tuple[str, ...]) -> None:
    rec = recognizer(phrases)
    text, confidence = hear(rec, clip("en_pay_premium.wav"))
    assert text == "i want to pay my premium" and confidence >= 0.6
    state = rec.acoustic_state()
    assert state is not None and state.endswith(";warp=1")
    rec.restart_call()
    assert rec.acoustic_state() is None


def test_acoustic_state_round_trip_without_a_warp_is_the_cepstral_mean(phrases: tuple[str, ...]) -> None:
    rec = recognizer(phrases)
    rec.restore_acoustic_state("41.0,2.0,-1.0")
    assert rec.acoustic_state() == "41.0,2.0,-1.0"
    rec.restore_acoustic_state("41.0,2.0,-1.0;warp=1.12")
    assert rec.acoustic_state() == "41.0,2.0,-1.0;warp=1.12"
    rec.restore_acoustic_state(None)
    assert rec.acoustic_state() is None
