"""What the whole-utterance engines' pool tests share: a need fed to the engine's pool as a call's media delivers
it, decoded in the decoder processes, and the intent the flow gives what was heard."""

from __future__ import annotations

import pathlib

import numpy as np

from ivr.speech import DecodePool, SpeechModels
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.hosts import HostedDecoder
from ivr.speech.pool import STREAM_BATCH_SAMPLES
from ivr.speech.whole import WholeRecognizer
from tests.unit.speech.conftest import load_wav, silence

ROOT = pathlib.Path(__file__).resolve().parents[3]


async def pooled_intent(hosted: SpeechModels, wav: str) -> tuple[str, str]:
    """(intent, text heard) for the clip `wav`, fed in 20 ms frames through a `DecodePool` over `hosted`."""
    classifier = load_flow_intents(ROOT / "flows" / "hotline.yaml").train(["en"])
    async with DecodePool(2, max_recognizers=4) as pool:
        session = await pool.open_session(hosted, "en", batch_samples=STREAM_BATCH_SAMPLES)
        try:
            assert isinstance(session.recognizer, WholeRecognizer)
            assert isinstance(session.recognizer._model, HostedDecoder), "decoded in the decoder processes"
            audio = np.concatenate([load_wav(wav), silence(0.3)])
            for start in range(0, len(audio), 160):  # 20 ms frames, as a call's media delivers them
                session.feed(audio[start : start + 160])
            result = await session.finish()
        finally:
            await session.aclose()
    return classifier.classify(result.text)[0].intent, result.text
