"""Moonshine decoding in the decoder processes, as `asr_engine: moonshine` hears an open turn (beam 3): the same
hypotheses as in this process, and through the engine's pool a need the flow classifies (Whisper's own:
test_whisper_hosts)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import numpy as np
import pytest

from ivr.config import EngineConfig
from ivr.engine.app import speech_specs
from ivr.speech import DecodePool, ModelSpec, SpeechModels
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.hosts import HostedDecoder
from ivr.speech.pool import STREAM_BATCH_SAMPLES
from ivr.speech.whole import WholeRecognizer
from tests.unit.speech.conftest import load_wav, silence

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[3]


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


async def test_the_pool_hears_a_need_through_a_decoder_process_and_the_flow_classifies_it(
    hosted: SpeechModels,
) -> None:
    classifier = load_flow_intents(ROOT / "flows" / "hotline.yaml").train(["en"])
    async with DecodePool(2, max_recognizers=4) as pool:
        session = await pool.open_session(hosted, "en", batch_samples=STREAM_BATCH_SAMPLES)
        try:
            assert isinstance(session.recognizer, WholeRecognizer)
            assert isinstance(session.recognizer._model, HostedDecoder), "decoded in the decoder processes"
            audio = np.concatenate([load_wav("en_file_claim.wav"), silence(0.3)])
            for start in range(0, len(audio), 160):  # 20 ms frames, as a call's media delivers them
                session.feed(audio[start : start + 160])
            result = await session.finish()
        finally:
            await session.aclose()
    assert classifier.classify(result.text)[0].intent == "claim", result
