from __future__ import annotations

import pathlib

import pytest

from ivr.speech import EngineKind, ModelSpec, SpeechModelError, SpeechModels
from ivr.speech.pocketsphinx_engine import _agreement


def test_missing_vosk_model_names_dialect_and_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "vosk-model-yue"
    with pytest.raises(SpeechModelError) as info:
        SpeechModels.load([ModelSpec("yue", EngineKind.VOSK, missing)])
    assert str(info.value) == f"speech model for dialect 'yue' at {missing}: model folder does not exist"
    assert info.value.dialect == "yue" and info.value.path == missing


def test_folder_that_is_not_a_vosk_model_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SpeechModelError, match="'hak'.*not a Vosk model folder"):
        SpeechModels.load([ModelSpec("hak", EngineKind.VOSK, tmp_path)])


def test_missing_pocketsphinx_model_files_are_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SpeechModelError, match=r"'en'.*no acoustic model \(mdef\)"):
        SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX, tmp_path)])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"engine": "whisper", "model": "/m"}, "unknown engine 'whisper'"),
        ({"engine": "vosk"}, "needs a model path"),
        ({"engine": "pocketsphinx", "bias": "magic"}, "unknown bias 'magic'"),
    ],
)
def test_config_mapping_errors(raw: dict[str, str], message: str) -> None:
    with pytest.raises(SpeechModelError, match=message):
        ModelSpec.from_mapping("cmn", raw)


def test_config_mapping() -> None:
    spec = ModelSpec.from_mapping("ko", {"engine": "vosk", "model": "/models/ko"})
    assert spec == ModelSpec("ko", EngineKind.VOSK, pathlib.Path("/models/ko"))


def test_unconfigured_dialect_is_a_model_error() -> None:
    with pytest.raises(SpeechModelError, match="'yue'.*no speech model configured"):
        SpeechModels({}, {}, {}).open("yue")


def test_nbest_agreement_confidence() -> None:
    hyps = _agreement(["file a claim", "file a claim", "file a claim", "pile a claim", "file a claim"])
    assert [h.text for h in hyps] == ["file a claim", "pile a claim"]
    assert hyps[0].confidence == pytest.approx(0.2 + 0.8 * 3 / 4)
    assert _agreement(["agent"])[0].confidence == 0.5
