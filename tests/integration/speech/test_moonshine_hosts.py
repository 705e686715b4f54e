"""Moonshine decoding in the decoder processes, as `asr_engine: moonshine` hears an open turn (beam 3): the same
hypotheses as in this process, and through the engine's pool a need the flow classifies (Whisper's own:
test_whisper_hosts). And the converted decoder's two graphs against the merged one they are split from."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from ivr.config import EngineConfig
from ivr.engine.app import speech_specs
from ivr.speech import ModelSpec, SpeechModels
from ivr.speech import moonshine_engine as engine
from ivr.speech.moonshine_engine import START_TOKEN, MoonshineModel
from ivr.speech.whole import wideband
from tests.integration.speech.pooled import pooled_intent
from tests.unit.speech.conftest import load_wav, silence

pytestmark = pytest.mark.integration



def moonshine_spec() -> ModelSpec:
    """English as `asr_engine: moonshine` configures it."""
    config = dataclasses.replace(EngineConfig(), asr_engine="moonshine")
    return next(spec for spec in speech_specs(config) if spec.dialect == "en")


@pytest.fixture(scope="module")
def hosted() -> Iterator[SpeechModels]:
    models = SpeechModels.load([moonshine_spec()])
    models.start_hosts(1)
    try:
        yield models
    finally:
        models.close()


def test_a_decoder_process_decodes_what_this_process_decodes(hosted: SpeechModels) -> None:
    spec = moonshine_spec()
    assert spec.beam == 3
    local = SpeechModels.load([spec])
    audio = np.concatenate([load_wav("en_policy_question.wav"), silence(0.3)])
    there = hosted._hosts[0].decode("en", audio, spec.beam)
    here = local.decode_whole("en", audio, spec.beam)
    assert there == here
    assert "policy" in there[0].text, there


async def test_the_pool_hears_a_need_through_a_decoder_process_and_the_flow_classifies_it(hosted: SpeechModels) -> None:
    intent, heard = await pooled_intent(hosted, "en_file_claim.wav")
    assert intent == "claim", heard


def test_the_split_decoder_reads_what_the_merged_one_read(tmp_path: pathlib.Path) -> None:
    # The conversion's merged decoder (its If on use_cache_branch, every row given its own encoder cache) and the
    # two graphs split from it: the same logits and decoder cache, bit for bit, at the first step and at later steps
    # of three rows that continue other rows than their own.
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = MoonshineModel.load("en")
    source = engine.bundled_model("en") / "decoder_model_merged.ort"
    raw, folded, merged = (tmp_path / f"{n}.onnx" for n in ("raw", "folded", "merged"))
    engine._optimized(source, raw, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    engine._optimized(raw, folded, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    quantize_dynamic(str(folded), str(merged), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], extra_options={"EnableSubgraph": True})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    decoder = ort.InferenceSession(str(merged), options, providers=["CPUExecutionProvider"])
    names = [o.name.replace("present.", "past_key_values.", 1) for o in decoder.get_outputs()[1:]]

    wide = wideband(load_wav("en_policy_question.wav"), lead_pad_s=0.0, trail_pad_s=0.0)
    hidden = model.encoder.run(None, {"input_values": wide[None, :]})[0]
    empty = {n: np.zeros((1, 8, 0, 52), np.float32) for n in names}
    out = decoder.run(None, {"input_ids": np.array([[START_TOKEN]], np.int64), "encoder_hidden_states": hidden,
                             "use_cache_branch": np.array([False]), **empty})
    past = dict(zip(names, out[1:], strict=True))
    step = engine._Decoding(model, hidden)
    np.testing.assert_array_equal(step(None, np.array([START_TOKEN], np.int64)), _log_softmax(out[0]))
    for parents, tokens in ((np.zeros(3, np.intp), np.array([601, 602, 603])),
                            (np.array([2, 0, 1], np.intp), np.array([40, 50, 60]))):
        feeds = {n: v[parents] if ".decoder." in n else np.repeat(v[:1], 3, axis=0) for n, v in past.items()}
        out = decoder.run(None, {"input_ids": tokens[:, None].astype(np.int64),
                                 "encoder_hidden_states": np.repeat(hidden, 3, axis=0),
                                 "use_cache_branch": np.array([True]), **feeds})
        np.testing.assert_array_equal(step(parents, tokens.astype(np.int64)), _log_softmax(out[0]))
        past |= {n: v for n, v in zip(names, out[1:], strict=True) if ".decoder." in n}
        assert step._cache is not None
        for name, value in step._cache.items():
            np.testing.assert_array_equal(value, past[name])

def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The log-probabilities of the next token, as the engine computed them from the merged decoder's logits."""
    rows = logits[:, -1, :].astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    return np.asarray(rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True)), np.float32)
