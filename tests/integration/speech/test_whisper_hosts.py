"""Whisper decoding in the decoder processes: the same words as in this process, through the engine's pool in
0.2 s batches; the utterance is gathered in the engine's process and each decode goes to the first decoder process
free (the hosts' low CPU priority is engine-independent: test_decoder_hosts)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np
import pytest

from ivr.speech import DecodePool, EngineKind, ModelSpec, SpeechModels
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.hosts import HostedDecoder
from ivr.speech.pool import STREAM_BATCH_SAMPLES
from ivr.speech.whole import WholeRecognizer
from tests.unit.speech.conftest import load_wav, silence

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[3]
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
