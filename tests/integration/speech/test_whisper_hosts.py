"""Whisper decoding in the decoder processes: the same words as in this process, through the engine's pool in
0.2 s batches; the utterance is gathered in the engine's process and each decode goes to the first decoder process
free (the hosts' low CPU priority is engine-independent: test_decoder_hosts)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from ivr.speech import EngineKind, ModelSpec, SpeechModels
from ivr.speech.pool import STREAM_BATCH_SAMPLES
from tests.integration.speech.pooled import pooled_intent
from tests.unit.speech.conftest import load_wav, silence

pytestmark = pytest.mark.integration

SPEC = ModelSpec("en", EngineKind.WHISPER)


@pytest.fixture(scope="module")
def hosted() -> Iterator[SpeechModels]:
    models = SpeechModels.load([SPEC])
    models.start_hosts(1)
    try:
        yield models
    finally:
        models.close()


def test_a_hosted_whisper_recognizer_hears_what_an_in_process_one_hears(hosted: SpeechModels) -> None:
    local = SpeechModels.load([SPEC])
    audio = np.concatenate([load_wav("en_real_person.wav"), silence(0.3)])
    heard = []
    for models in (hosted, local):
        recognizer = models.open("en")
        try:
            for start in range(0, len(audio), STREAM_BATCH_SAMPLES):
                recognizer.accept(audio[start : start + STREAM_BATCH_SAMPLES])
            heard.append(recognizer.finish())
        finally:
            models.release(recognizer)
    assert heard[0] == heard[1]
    assert "person" in heard[0].text, heard[0]


async def test_the_pool_batches_whisper_audio_and_the_need_is_classified(hosted: SpeechModels) -> None:
    intent, heard = await pooled_intent(hosted, "en_file_claim.wav")
    assert intent == "claim", heard



def test_every_decoder_process_decodes_for_any_recognizer() -> None:
    models = SpeechModels.load([SPEC])
    models.start_hosts(2)
    try:
        audio = np.concatenate([load_wav("en_file_claim.wav"), silence(0.3)])
        heard = {host.pid: host.decode("en", audio, 5) for host in models._hosts}
        recognizer = models.open("en")
        recognizer.accept(audio)
        result = recognizer.finish()
        models.release(recognizer)
    finally:
        models.close()
    first, second = heard.values()
    assert len(heard) == 2 and first == second, "two processes, the same decode"
    assert result.text == " ".join(first[0].text.split()), "the recognizer's decode is theirs"
