"""Media interop of a live `ivr serve` with other SIP stacks: keys by every signalling, audio both ways.

Real peers on loopback: SIPp replaying its RFC 2833 captures, baresip with WAV files for a sound
card, and our own test caller for SIP INFO and in-band keys. The engine runs three small test
flows from a temporary folder (a digit collector, a tone then a question, a long tone to interrupt),
with recorded tones as prompts; each test reads the engine's own record of the call through its
HTTP API. (test_say_need_once covers the single key 0 by RFC 4733, INFO and in-band on the hotline.)
"""

from __future__ import annotations

import asyncio
import pathlib
import urllib.parse
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ivr.media import load_telephony, read_wav, silence, tone, write_wav
from ivr.testing import peers
from ivr.testing.caller import DtmfMethod, Keys, Pause, TestCaller, audio_segments
from ivr.testing.rtpprobe import dominant_frequency_hz
from tests.integration.engine.conftest import RunningEngine
from tests.integration.engine.testflows import engine_serving
from tests.integration.sip.sip_peers import baresip, needs_baresip, needs_sipp, run_sipp

pytestmark = pytest.mark.integration

HERE = pathlib.Path(__file__).resolve().parent
SPEECH = HERE.parents[1] / "data" / "speech"
TONE_HZ = 1200.0
"""The recorded prompt the engine plays: a pure tone no speech prompt could be mistaken for."""
TONE_S = 1.5
SPEAK_AT_S = 9.0
"""When baresip says its need: after the tone and the question, before the question's no-input timeout."""
LONG_TONE_S = 8.0
"""A prompt long enough that a key pressed early must visibly cut it short."""
KEYS_NUMBER, TONE_NUMBER, BARGE_NUMBER = "7100", "7200", "7300"

KEYS_FLOW = f"""\
id: keys_test
version: "1"
numbers: ["{KEYS_NUMBER}"]
dialects: [en]
default_dialect: en
queues: [general]
start: entry
prompts:
  enter: {{en: "Please enter your digits now, then press hash."}}
nodes:
  entry:
    type: collect
    prompt: enter
    store: entered
    speech: false
    max_length: 12
    timeout_s: 10
    next: done
  done:
    type: hangup
"""

TONE_FLOW = f"""\
id: tone_test
version: "1"
numbers: ["{TONE_NUMBER}"]
dialects: [en]
default_dialect: en
queues: [general]
start: beep
intents:
  claim:
    phrases:
      en: [I want to file a claim, file a claim, make a claim]
  policy_query:
    phrases:
      en: [check my policy, I have a question about my policy]
prompts:
  tone: {{en: "Replaced by the recorded tone."}}
  ask: {{en: "What do you need?"}}
nodes:
  beep:
    type: play
    prompt: tone
    next: need
  need:
    type: ask
    prompt: ask
    intents: {{claim: done, policy_query: done}}
    timeout_s: 10
  done:
    type: hangup
"""

BARGE_FLOW = f"""\
id: barge_test
version: "1"
numbers: ["{BARGE_NUMBER}"]
dialects: [en]
default_dialect: en
queues: [general]
start: menu
prompts:
  long_tone: {{en: "Replaced by the recorded long tone."}}
nodes:
  menu:
    type: collect
    prompt: long_tone
    store: entered
    speech: false
    max_length: 1
    next: done
  done:
    type: hangup
"""


@pytest.fixture(scope="module")
def interop_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    tmp = tmp_path_factory.mktemp("interop")
    recordings = tmp / "prompts" / "en"
    recordings.mkdir(parents=True)
    write_wav(recordings / "tone.wav", tone([TONE_HZ], TONE_S, level_dbfs=-12.0))
    write_wav(recordings / "long_tone.wav", tone([TONE_HZ], LONG_TONE_S, level_dbfs=-12.0))
    flows = {"keys": KEYS_FLOW, "tone": TONE_FLOW, "barge": BARGE_FLOW}
    with engine_serving(tmp, flows, f"prompts_dir: {tmp / 'prompts'}\n") as running:
        yield running


def uri(engine: RunningEngine, number: str) -> str:
    return f"sip:{number}@127.0.0.1:{engine.sip_port}"


async def finished_call_of(engine: RunningEngine, caller: str, timeout_s: float = 25.0) -> dict[str, Any]:
    """The finished record and journey of the (one) call from `caller` (the record exists from the
    call's start, in progress, so wait for it to be finished, not merely to appear)."""
    async with asyncio.timeout(timeout_s):
        while True:
            calls = (await asyncio.to_thread(engine.get, f"/api/calls?caller={caller}"))["calls"]
            if calls:
                quoted = urllib.parse.quote(calls[0]["call_id"], safe="")
                detail: dict[str, Any] = await asyncio.to_thread(engine.get, f"/api/calls/{quoted}")
                if not detail.get("in_progress"):
                    return detail
            await asyncio.sleep(0.25)


def digits_input(detail: dict[str, Any]) -> list[str]:
    return [e["data"]["digits"] for e in detail["journey"] if e["kind"] == "input" and "digits" in e["data"]]


# -- keys ----------------------------------------------------------------------------------------

PCAPS = pathlib.Path(peers.SIPP_PCAPS.path or "/usr/share/sip-tester")


def key_actions(keys: str, gap_ms: int = 400) -> str:
    """SIPp actions pressing `keys`: one capture replay per key (140 ms each), pauses between them."""
    names = {"*": "star", "#": "pound"}
    pause = f'\n  <pause milliseconds="{gap_ms}"/>\n'
    return pause.join(
        f'  <nop><action><exec play_pcap_audio="{PCAPS}/dtmf_2833_{names.get(k, k)}.pcap"/></action></nop>'
        for k in keys
    )


@needs_sipp
async def test_sipp_rfc2833_captures_are_the_digits_collected(
    interop_engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    """SIPp's own RFC 2833 captures, one key each; "5" twice replays the very same capture, which the
    engine must still count as two presses (same RTP timestamp, a new marker-bit start). The
    captures come from one stream with rising sequence numbers, in the order 1-9, *, #, 0."""
    if peers.SIPP_PCAPS.missing:
        pytest.skip(peers.SIPP_PCAPS.reason)
    caller = "13700000201"  # the From user in the scenario
    text = (HERE / "scenarios" / "uac_rfc2833_keys.xml").read_text().replace("__KEYS__", key_actions("1559#"))
    scenario_file = tmp_path / "uac_rfc2833_keys.xml"
    scenario_file.write_text(text)
    result = await run_sipp(scenario_file, interop_engine.sip_port, tmp_path, service=KEYS_NUMBER,
                            timeout_s=40.0)
    assert result.returncode == 0, result.explain()
    detail = await finished_call_of(interop_engine, caller)
    assert detail["record"]["variables"]["entered"] == "1559"
    assert digits_input(detail) == ["1559"], "one entry, each key heard once, in order"
    assert detail["record"]["path"][-1] == "done"


@pytest.mark.parametrize("method", [DtmfMethod.INFO, DtmfMethod.INBAND], ids=lambda m: m.value)
async def test_a_digit_string_by_info_or_inband_is_collected(
    interop_engine: RunningEngine, caller: TestCaller, method: DtmfMethod
) -> None:
    """Every key of the pad (beyond the single 0 of test_say_need_once) ends up in the collected value,
    whether sent as SIP INFO or as tones in the audio of a caller without telephone-event."""
    number = "1370000021" + ("1" if method is DtmfMethod.INFO else "2")
    report = await caller.call(uri(interop_engine, KEYS_NUMBER), [Pause(0.5), Keys("1234567890#", method)],
                               from_number=number, linger_s=10.0, max_duration_s=30.0)
    assert report.answered
    assert report.hangup_by == "far_end", "the flow hangs up once the keys are collected"
    detail = interop_engine.call_detail(report.call_id)
    assert detail["record"]["variables"]["entered"] == "1234567890"
    assert digits_input(detail) == ["1234567890"]


# -- audio both ways with baresip -------------------------------------------------------------------


@needs_baresip
async def test_baresip_hears_our_tone_and_we_hear_its_speech(
    interop_engine: RunningEngine, tmp_path: pathlib.Path
) -> None:
    """Engine → baresip: the recorded tone prompt is the dominant frequency of what baresip records.
    baresip → engine: the speech baresip plays from a file is recognized and routes the call."""
    speech = load_telephony(SPEECH / "en_file_claim.wav")
    # Silent through the tone and the question (baresip cannot wait for them to end, as our test
    # caller's AwaitPrompt does), then the need, then room for our BYE. The question can start
    # seconds late: PocketSphinx building the phrase LM of a new decoder holds the GIL ~3 s here.
    say = np.concatenate([silence(SPEAK_AT_S), speech, silence(6.0)]).astype(np.int16)
    dial = f"/dial {uri(interop_engine, TONE_NUMBER)}"
    async with baresip(tmp_path, commands=[dial], say=say.tobytes(), record=True, quit_after_s=40) as (_, proc):
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            await proc.stdout.readuntil(b"Call established")
            detail = await finished_call_of(interop_engine, "baresip")
            await proc.stdout.readuntil(b"terminated")  # baresip took our BYE and closed its recording
    record = detail["record"]
    assert [e["kind"] for e in detail["journey"] if e["kind"] in ("no_input", "no_match")] == []
    assert record["intent"] == "claim", record
    assert "claim" in record["transcript"]
    assert abs(first_prompt_frequency_hz(tmp_path) - TONE_HZ) < 20.0


def first_prompt_frequency_hz(folder: pathlib.Path) -> float:
    """The dominant frequency of the first second of the first prompt baresip recorded (sndfile)."""
    (recording,) = folder.glob("dump-*-dec.wav")  # what baresip decoded from us
    heard = read_wav(recording)
    assert heard.rate_hz == 8000
    audio = heard.samples[:, 0]
    segments = audio_segments(audio)
    assert segments, "baresip recorded nothing from the engine"
    start = int(segments[0][0] * 8000)
    return dominant_frequency_hz(audio[start + 800 : start + 8800])


# -- barge-in by key -------------------------------------------------------------------------------


async def test_a_key_pressed_during_a_prompt_stops_its_audio(
    interop_engine: RunningEngine, caller: TestCaller
) -> None:
    """The caller hears the prompt stop right after their key, not play on to its end.

    Measured on the caller's own recording (which starts when the call is answered): the tone's
    end is compared with the moment the key was sent. The bound is loose (at most 1.5 s: jitter buffers
    on both sides, the key's own 20 ms packets, and a loaded machine), the point is the behaviour, not
    our speed: the tone is 3 s longer than that.
    """
    press_after_s = 2.5
    report = await caller.call(uri(interop_engine, BARGE_NUMBER), [Pause(press_after_s), Keys("5")],
                               from_number="13700000221", linger_s=5.0, max_duration_s=30.0)
    assert report.answered and report.hangup_by == "far_end"
    answered = next(e.at_s for e in report.timeline if e.what == "answered")
    pressed = next(e.at_s for e in report.timeline if e.what == "keys") - answered
    segments = audio_segments(report.heard)
    assert segments, "the caller heard no prompt at all"
    start, end = segments[0]
    assert start < pressed, "the prompt had not started when the key was pressed"
    assert end < start + LONG_TONE_S - 3.0, f"the prompt played on: heard {start:.2f}-{end:.2f} s"
    assert -0.1 <= end - pressed <= 1.5, f"prompt ended {end - pressed:+.2f} s after the key"
    assert interop_engine.call_detail(report.call_id)["record"]["variables"]["entered"] == "5"
