from __future__ import annotations

import math
import pathlib

import pytest

from ivr.call import Hypothesis
from ivr.speech import EngineKind, ModelSpec, SpeechModelError, SpeechModels
from ivr.speech.pocketsphinx_engine import _posteriors, word_confidence


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
        ({"engine": "wav2vec", "model": "/m"},
         "unknown engine 'wav2vec' \\(one of pocketsphinx, vosk, whisper, moonshine\\)"),
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


def test_nbest_confidence_is_each_texts_share_of_the_path_score_mass() -> None:
    # Scores in log units (base 1.0001): a path 300 units worse than the best weighs e^-3 at scale 0.01.
    hyps = _posteriors("file a claim", [("file a claim", -1000), ("file a plane", -1300), ("file a claim", -1300)],
                       scale=0.01)
    assert [h.text for h in hyps] == ["file a claim", "file a plane"]
    mass = 1 + math.exp(-3)
    assert hyps[0].confidence == pytest.approx(mass / (mass + math.exp(-3)))
    assert sum(h.confidence for h in hyps) == pytest.approx(1.0)


def test_nbest_confidence_keeps_the_best_path_first_and_copes_without_scores() -> None:
    hyps = _posteriors("pay my bill", [("pay my bell", -10), ("pay a bill", -20)], scale=0.01)
    assert hyps[0].text == "pay my bill"  # the best path, weighed like the top A* path
    assert hyps[0].confidence == pytest.approx(1 / (2 + math.exp(-0.1)))
    assert _posteriors("agent", []) == [Hypothesis("agent", 0.5)]


def test_word_confidence_is_the_mean_posterior_of_the_best_paths_words() -> None:
    segments = [("<s>", 1.0), ("i", 0.9), ("<sil>", 0.2), ("want", 1.0001), ("to(3)", 0.8), ("[NOISE]", 0.1)]
    assert word_confidence(segments) == pytest.approx((0.9 + 1.0 + 0.8) / 3)  # fillers left out, capped at 1
    assert word_confidence([("<s>", 1.0), ("</s>", 1.0)]) == 0.0


def test_the_configured_model_cache_is_where_moonshine_is_converted(tmp_path: pathlib.Path) -> None:
    """`model_cache_dir` reaches the conversion (a file there, not a folder, makes it fail naming that path) and the
    decoder processes (every spec carries it)."""
    from ivr.config import EngineConfig
    from ivr.engine.app import speech_specs

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("", encoding="utf-8")
    specs = speech_specs(EngineConfig(asr_engine="moonshine", model_cache_dir=blocked))
    assert {spec.converted for spec in specs} == {blocked}
    with pytest.raises(SpeechModelError, match=f"could not convert it into {blocked}"):
        SpeechModels.load(specs)
