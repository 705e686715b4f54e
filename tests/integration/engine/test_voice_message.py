"""Live: a caller phones `ivr serve` at night over SIP, leaves a voice message after the beep and ends it with
#; the engine transcribes it with its own recognizer (English: Whisper, the default), stores the
WAV, and `GET /api/messages` lists it with the transcript; the audio served back is the caller's speech.

Real peers: our SIP/RTP test caller on loopback speaking with Festival, the engine in a subprocess. "Night"
is the flow's own schedule: its opening hour is set to one that is not now, so the test holds at any time.
"""

from __future__ import annotations

import datetime as dt
import io
import pathlib
import urllib.request
import wave
import zoneinfo
from collections.abc import Iterator

import numpy as np
import pytest

from ivr.media.wav import write_wav
from ivr.testing import peers
from ivr.testing.caller import AwaitPrompt, Keys, Pause, PlayFile, Say, TestCaller
from ivr.testing.voices import speak
from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(peers.FESTIVAL.missing, reason=peers.FESTIVAL.reason),
    pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason),
]

ZONE = "Asia/Shanghai"
SAID = "I want to report a claim please call me back"


def night_flow() -> str:
    """A one-dialect hotline whose only opening hour is six hours from now: it is night for the caller."""
    start = (dt.datetime.now(zoneinfo.ZoneInfo(ZONE)) + dt.timedelta(hours=6)).replace(minute=0)
    end = start + dt.timedelta(hours=1)
    return f"""
id: night
numbers: ["95519"]
dialects: [en]
default_dialect: en
queues: [general]
intents:
  claim:
    phrases: {{en: [I want to report a claim, report a claim, file a claim, please call me back]}}
  payment:
    phrases: {{en: [pay my premium, my payment failed]}}
prompts:
  closed: {{en: Sorry we are closed. Please leave a message after the tone and press hash when you are done.}}
  thanks: {{en: Thank you. We will call you back.}}
  bye: {{en: Goodbye.}}
nodes:
  hours:
    type: schedule
    timezone: {ZONE}
    hours:
      - {{from: "{start:%H:%M}", to: "{end:%H:%M}"}}
    open: bye
    closed: leave
  leave:
    type: message
    prompt: closed
    queue: general
    thanks: thanks
    max_length_s: 30
    next: bye
  bye:
    type: hangup
    prompt: bye
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    tmp = tmp_path_factory.mktemp("voicemail")
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "night.yaml").write_text(night_flow(), encoding="utf-8")
    running = start_engine(tmp, "--flows", str(flows), "--set", f"messages_dir={tmp / 'messages'}")
    try:
        yield running
    finally:
        stop_engine(running)


def voiced_buzz(seconds: float) -> np.ndarray:
    """A harmonic-rich 150 Hz buzz, which webrtcvad takes for a voice (its strongest partial is 150 Hz)."""
    t = np.arange(round(seconds * 8000)) / 8000
    sig = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 20))
    return (6000 * sig / np.abs(sig).max()).astype(np.int16)


def fetch(engine: RunningEngine, path: str) -> bytes:
    request = urllib.request.Request(engine.api + path, headers=engine.headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
        return body


async def test_a_message_left_at_night_is_transcribed_stored_and_listed(
    engine: RunningEngine, caller: TestCaller
) -> None:
    steps = [AwaitPrompt(timeout_s=30.0, quiet_s=1.5), Pause(0.6), Say(SAID), Keys("#"), AwaitPrompt(timeout_s=20.0)]
    report = await caller.call(engine.uri, steps, from_number="13700000601", linger_s=1.0)
    assert report.answered
    detail = engine.call_detail(report.call_id)
    record = detail["record"]
    assert record["outcome"] == "callback" and record["path"] == ["hours", "leave", "bye"]
    step = next(e for e in detail["journey"] if e["kind"] == "message")
    assert step["data"]["ended_by"] == "terminator" and step["data"]["stored"] is True

    (listed,) = engine.get("/api/messages")["messages"]
    assert listed["call_id"] == report.call_id and listed["caller"] == "13700000601"
    assert listed["queue"] == "general" and listed["follow_up"] == "queue:general"
    assert "claim" in listed["transcript"] and "call me back" in listed["transcript"], listed["transcript"]
    spoken_s = len(speak(SAID)) / 8000  # the words and the half second of silence the caller adds
    assert spoken_s < listed["duration_s"] < spoken_s + 1.2  # + half a second before the words, and the # key

    with wave.open(io.BytesIO(fetch(engine, listed["audio"])), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert abs(len(audio) / 8000 - listed["duration_s"]) < 0.01
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300, "the caller's voice, not silence"


async def test_a_caller_who_hangs_up_without_pressing_hash_still_leaves_the_message(
    engine: RunningEngine, caller: TestCaller, tmp_path: pathlib.Path
) -> None:
    buzz = tmp_path / "buzz.wav"  # a 150 Hz voiced buzz stands in for a voice: it must come back as sent
    write_wav(buzz, voiced_buzz(2.0))
    steps = [AwaitPrompt(timeout_s=30.0, quiet_s=1.5), Pause(0.6), PlayFile(buzz), Pause(0.5)]
    report = await caller.call(engine.uri, steps, from_number="13700000602", linger_s=0.0)
    detail = engine.call_detail(report.call_id)
    assert detail["record"]["outcome"] == "callback"
    newest = engine.get("/api/messages?limit=1")["messages"][0]
    assert newest["call_id"] == report.call_id and newest["ended_by"] == "hangup"
    with wave.open(io.BytesIO(fetch(engine, newest["audio"])), "rb") as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * 8000 / len(audio)
    assert abs(peak_hz - 150.0) < 5.0, f"the recorded voice peaks at {peak_hz:.0f} Hz"
    assert 2.3 < len(audio) / 8000 < 3.3, "half a second before the voice, the voice, the silence until hang-up"
