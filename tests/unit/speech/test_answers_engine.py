"""A dialect's answers engine: config, and which engine a closed turn (a re-ask's answers, yes/no) gets."""

from __future__ import annotations

import pathlib

import pytest

from ivr.speech import Bias, EngineKind, ModelSpec, PocketSphinxRecognizer, SpeechModelError, SpeechModels
from ivr.speech.pocketsphinx_engine import TELEPHONE_MLLR
from ivr.speech.whole import WholeRecognizer

HYBRID = ModelSpec("en", EngineKind.WHISPER, answers=ModelSpec("en", EngineKind.POCKETSPHINX))


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ("pocketsphinx", ModelSpec("en", EngineKind.POCKETSPHINX)),
        ({"engine": "pocketsphinx", "mllr": "none", "bias": "grammar"},
         ModelSpec("en", EngineKind.POCKETSPHINX, mllr=None, bias=Bias.GRAMMAR)),
        ({"engine": "pocketsphinx", "mllr": "telephone"},
         ModelSpec("en", EngineKind.POCKETSPHINX, mllr=TELEPHONE_MLLR)),
    ],
    ids=["name", "mapping", "mllr"],
)
def test_config_names_the_answers_engine_by_name_or_mapping(answers: object, expected: ModelSpec) -> None:
    spec = ModelSpec.from_mapping("en", {"engine": "whisper", "answers": answers})
    assert spec == ModelSpec("en", EngineKind.WHISPER, answers=expected)
    assert ModelSpec.from_mapping("en", {"engine": "whisper"}).answers is None, "none unless configured"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ("kaldi", "speech model for dialect 'en': unknown answers engine 'kaldi' (one of pocketsphinx: an engine "
                  "that searches only a turn's answers)"),
        ("whisper", "speech model for dialect 'en': unknown answers engine 'whisper' (one of pocketsphinx: an engine "
                    "that searches only a turn's answers)"),
        ({"mllr": "none"}, "speech model for dialect 'en': unknown answers engine 'None' (one of pocketsphinx: an "
                           "engine that searches only a turn's answers)"),
        ({"engine": "pocketsphinx", "answers": "pocketsphinx"},
         "speech model for dialect 'en': an answers engine has no `answers` of its own"),
        ({"engine": "pocketsphinx", "warps": [3.0]}, "speech model for dialect 'en': `warps`: at most 4 factors "
                                                     "within 0.7-1.4, got [3.0]"),
    ],
    ids=["unknown", "no-grammar", "no-engine", "nested", "bad-option"],
)
def test_a_bad_answers_engine_is_a_model_error_naming_the_dialect(answers: object, message: str) -> None:
    with pytest.raises(SpeechModelError) as info:
        ModelSpec.from_mapping("en", {"engine": "whisper", "answers": answers})
    assert str(info.value) == message and info.value.dialect == "en"


def test_an_answers_engine_that_is_the_dialects_own_is_refused() -> None:
    with pytest.raises(SpeechModelError, match="'en'.*`answers: pocketsphinx` names the dialect's own engine"):
        ModelSpec.from_mapping("en", {"engine": "pocketsphinx", "answers": "pocketsphinx"})


def test_a_closed_turn_gets_the_answers_engine_and_an_open_one_the_dialects() -> None:
    models = SpeechModels.load([HYBRID, ModelSpec("en-gb", EngineKind.WHISPER)])
    assert models.spec("en").engine is EngineKind.WHISPER
    assert models.spec("en", closed=True).engine is EngineKind.POCKETSPHINX
    assert models.spec("en-gb", closed=True).engine is EngineKind.WHISPER, "without answers engine: the dialect's"
    opened = [models.open("en"), models.open("en", closed=True), models.open("en-gb", closed=True)]
    try:
        assert [type(r) for r in opened] == [WholeRecognizer, PocketSphinxRecognizer, WholeRecognizer]
        assert {r.language for r in opened[:2]} == {"en"}, "the answers engine's results are the dialect's"
    finally:
        for recognizer in opened:
            models.release(recognizer)


def test_an_answers_engines_missing_model_fails_at_load(tmp_path: pathlib.Path) -> None:
    spec = ModelSpec("en", EngineKind.WHISPER, answers=ModelSpec("en", EngineKind.POCKETSPHINX, tmp_path))
    with pytest.raises(SpeechModelError, match=r"'en'.*no acoustic model \(mdef\)"):
        SpeechModels.load([spec])
