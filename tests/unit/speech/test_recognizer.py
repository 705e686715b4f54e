from __future__ import annotations

import numpy as np
import pytest

from ivr.call import Hypothesis, SpeechInput
from ivr.speech import RecognitionResult, Recognizer
from ivr.speech.recognizer import normalize_phrases

from .fakes import ScriptedRecognizer


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedRecognizer(), Recognizer)


def test_utterance_lifecycle_counts_audio_and_dedupes_nbest() -> None:
    rec = ScriptedRecognizer("en")
    for _ in range(50):
        rec.accept(np.zeros(160, np.int16))
    part = rec.partial()
    assert not part.final and part.text == "heard 8000"
    final = rec.finish()
    assert final == RecognitionResult(
        text="heard 8000",
        confidence=0.9,
        final=True,
        language="en",
        nbest=(Hypothesis("heard 8000", 0.9), Hypothesis("other", 0.2)),
        audio_s=1.0,
    )
    assert rec.calls.count("start") == 1
    rec.accept(np.zeros(160, np.int16))
    assert rec.calls.count("start") == 2, "accept after finish begins a new utterance"


def test_finish_without_audio_is_an_empty_final_result() -> None:
    result = ScriptedRecognizer("cmn").finish()
    assert (result.text, result.confidence, result.final, result.language) == ("", 0.0, True, "cmn")
    assert "final" not in ScriptedRecognizer().calls


def test_reset_abandons_only_an_open_utterance() -> None:
    rec = ScriptedRecognizer()
    rec.reset()
    assert rec.calls == []
    rec.accept(np.zeros(160, np.int16))
    rec.reset()
    assert rec.calls[-1] == "abandon"


def test_set_phrases_reaches_the_engine_only_when_it_changes() -> None:
    rec = ScriptedRecognizer()
    rec.set_phrases(["I want to file a claim.", "i want to file a CLAIM", "agent"])
    rec.set_phrases(["i want to file a claim", "agent"])
    assert rec.calls == ["phrases:2"]
    assert rec.phrases == ("i want to file a claim", "agent")


def test_non_int16_audio_is_refused() -> None:
    with pytest.raises(TypeError, match="int16"):
        ScriptedRecognizer().accept(np.zeros(160, np.float64))  # type: ignore[arg-type]


def test_normalize_phrases() -> None:
    assert normalize_phrases(["  Talk to an AGENT! ", "talk to an agent", "", "我要，理赔"]) == (
        "talk to an agent",
        "我要 理赔",
    )


def test_result_converts_to_the_call_speech_input() -> None:
    r = RecognitionResult("file a claim", 0.8, True, "en", (Hypothesis("file a claim", 0.8),), 1.5)
    assert r.to_speech_input() == SpeechInput(
        "file a claim", 0.8, "en", (Hypothesis("file a claim", 0.8),), 1.5
    )
