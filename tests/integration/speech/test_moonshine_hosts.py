"""Moonshine decoding in the decoder processes, as `asr_engine: moonshine` hears an open turn (beam 3): the same
hypotheses as in this process, and through the engine's pool a need the flow classifies (Whisper's own:
test_whisper_hosts)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from ivr.config import EngineConfig
from ivr.engine.app import speech_specs
from ivr.speech import ModelSpec, SpeechModels
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
