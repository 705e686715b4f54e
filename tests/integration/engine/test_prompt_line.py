"""Live: the prompt-recording line. A staff member phones `ivr serve`, keys a PIN, picks the new dialect pack
`cdo` (made by `ivr dialects new cdo --from cmn`) and its `greeting`, records a 1 kHz tone as the take after the
beep, hears it back and keeps it; the next caller of a flow served in cdo hears that tone as the greeting, where
a caller before the take heard the Mandarin TTS fallback. Checked with Goertzel on what the callers heard.

Real peers: our SIP/RTP test caller (keys by RFC 4733) and `ivr serve` in a subprocess with espeak-ng prompts.
A second staff member keys wrong PINs on the line while the take is recorded (the module's tests share one loop,
so that call runs alongside the first test and its own test judges it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from numpy.typing import NDArray

from ivr.engine.flowprompts import load_flow_prompts
from ivr.media.goertzel import goertzel_basis, tone_powers
from ivr.media.tones import tone
from ivr.media.wav import load_telephony, write_wav
from ivr.testing import peers
from ivr.testing.caller import AwaitPrompt, CallReport, Keys, Pause, PlayFile, TestCaller
from ivr.voice import load_dialects
from ivr.voice.newpack import prompts_to_record
from ivr.voice.studio import hash_pin
from tests.integration.engine.agents import call_until
from tests.integration.engine.conftest import ROOT, RunningEngine, start_engine, stop_engine

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason),
    pytest.mark.asyncio(loop_scope="module"),
]

PIN = "246813"
TONE_HZ = 1000.0
LINE = "95519900"
GREET = """
id: greet
numbers: ["95519"]
dialects: [cmn, cdo]
default_dialect: cdo
queues: [general]
prompts:
  greeting: {cmn: 您好，欢迎致电，这是问候语。}
nodes:
  hello: {type: play, prompt: greeting, next: bye}
  bye: {type: hangup}
"""


@dataclass
class Site:
    engine: RunningEngine
    prompts: Path
    dialects: Path
    flows: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("promptline")
    flows, dialects, prompts = tmp / "flows", tmp / "dialects", tmp / "prompts"
    flows.mkdir()
    prompts.mkdir()
    shutil.copy(ROOT / "flows" / "promptline.yaml", flows)
    # The flow serves Mandarin until the new pack exists; then cdo is added to it, as ops would do.
    (flows / "greet.yaml").write_text(GREET.replace("[cmn, cdo]", "[cmn]").replace("default_dialect: cdo",
                                                                                "default_dialect: cmn"))
    shutil.copytree(ROOT / "dialects", dialects)
    made = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "dialects", "new", "cdo", "--from", "cmn", "--native", "閩東話",
         "--set", f"flows_dir={flows}", "--set", f"dialects_dir={dialects}", "--set", f"prompts_dir={prompts}"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "greeting: 您好，欢迎致电，这是问候语。" in made.stdout and "cdo → cmn" in made.stdout
    (flows / "greet.yaml").write_text(GREET, encoding="utf-8")
    engine = start_engine(
        tmp, "--flows", str(flows), "--set", f"dialects_dir={dialects}", "--set", f"prompts_dir={prompts}",
        "--set", f'prompt_line_pins=["{hash_pin(PIN)}"]', "--set", f"prompt_cache_dir={tmp / 'cache'}",
    )
    try:
        yield Site(engine, prompts, dialects, flows)
    finally:
        stop_engine(engine)


def line_uri(site: Site) -> str:
    return site.engine.uri.replace("sip:95519@", f"sip:{LINE}@")


@dataclass
class Line:
    caller: TestCaller
    """The module's test caller (one loop for the module: see the module docstring)."""
    wrong_pins: asyncio.Task[CallReport]
    """The staff member who keys a wrong PIN three times, calling from the module's start."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def line(site: Site) -> AsyncIterator[Line]:
    base = 42000 + (os.getpid() % 50) * 100  # keep parallel test runs off each other's RTP ports
    caller = await TestCaller.open(rtp_ports=(base, base + 98))
    steps = [AwaitPrompt(timeout_s=20.0), Keys("1111#"), AwaitPrompt(timeout_s=20.0), Keys("2222#"),
             AwaitPrompt(timeout_s=20.0), Keys("3333#"), AwaitPrompt(timeout_s=20.0)]
    wrong_pins = asyncio.create_task(caller.call(line_uri(site), steps, from_number="13700000704", linger_s=2.0))
    try:
        yield Line(caller, wrong_pins)
    finally:
        wrong_pins.cancel()
        with contextlib.suppress(BaseException):
            await wrong_pins
        await caller.close()


def tone_share(audio: NDArray[np.int16], hz: float = TONE_HZ) -> float:
    """The largest share of a 100 ms window's energy at `hz` (Goertzel), over the windows that carry sound."""
    window = 800
    count = len(audio) // window
    frames = audio[: count * window].astype(np.float64).reshape(count, window)
    energy = np.sum(frames**2, axis=1)
    loud = energy > window * 300.0**2
    if not loud.any():
        return 0.0
    powers = tone_powers(frames[loud], goertzel_basis((hz,), window, 8000))[:, 0]
    return float(np.max(powers / energy[loud]))


async def greet_call(site: Site, caller: TestCaller, number: str) -> NDArray[np.int16]:
    report = await caller.call(site.engine.uri, [AwaitPrompt(timeout_s=20.0, quiet_s=1.0)], from_number=number,
                               linger_s=0.5)
    assert report.answered
    return report.heard


async def test_a_take_recorded_by_keys_is_what_the_next_caller_hears(site: Site, line: Line, tmp_path: Path) -> None:
    caller = line.caller
    before = await greet_call(site, caller, "13700000701")
    assert tone_share(before) < 0.3, "before the take, cdo falls back to the Mandarin TTS greeting"

    dialects = load_dialects(site.dialects)
    codes = sorted(dialects)
    flows = load_flow_prompts(site.flows, dialects.fallbacks())
    todo = [p for p, _ in prompts_to_record("cdo", dialects, site.prompts, flows)]
    take = tmp_path / "take.wav"
    write_wav(take, tone((TONE_HZ,), 1.5, level_dbfs=-10.0))
    steps = [
        AwaitPrompt(timeout_s=20.0), Keys(f"{PIN}#"),
        AwaitPrompt(timeout_s=30.0), Keys(f"{codes.index('cdo') + 1}#"),
        AwaitPrompt(timeout_s=60.0), Keys(f"{todo.index('greeting') + 1}#"),
        AwaitPrompt(timeout_s=30.0, quiet_s=1.0), Pause(0.3), PlayFile(take), Keys("#"),
        AwaitPrompt(timeout_s=30.0, quiet_s=1.2), Keys("1"),
    ]
    # Kept (key 1): the staff member hangs up once the engine has added the recording.
    report = await call_until(site.engine, caller, steps, from_number="13700000702", event="prompt_recording_added",
                              within_s=200.0, uri=line_uri(site))
    assert report.answered
    detail = site.engine.call_detail(report.call_id)
    kept = next(e for e in detail["journey"] if e["kind"] == "prompt_recorded")
    assert (kept["data"]["dialect"], kept["data"]["prompt"]) == ("cdo", "greeting")
    assert not any(PIN in str(e["data"]) for e in detail["journey"]), "the PIN never reaches the journey"
    saved = site.prompts / "cdo" / "greeting.wav"
    assert tone_share(load_telephony(saved)) > 0.8
    heard_back = report.heard
    assert tone_share(heard_back) > 0.8, "the take was played back to the staff member"

    after = await greet_call(site, caller, "13700000703")
    assert tone_share(after) > 0.8, "the next caller of cdo hears the recording"

    check = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ivr.cli", "prompts", "check", "--flows", str(site.flows), "--dialects",
         str(site.dialects), "--prompts", str(site.prompts), "--cache", str(site.prompts.parent / "cache")],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "200"},
    )
    greeting_row = next(line for line in check.stdout.splitlines() if "greeting" in line and "cdo" in line)
    assert "recorded" in greeting_row, check.stdout[-3000:]
    cdo_summary = next(line for line in check.stdout.splitlines() if re.match(r"^│ cdo\s", line))
    assert re.match(r"^│ cdo\s+│\s+1 │", cdo_summary), cdo_summary  # coverage per dialect: one recorded


async def test_a_wrong_pin_three_times_records_nothing(site: Site, line: Line) -> None:
    report = await asyncio.wait_for(line.wrong_pins, 120.0)
    record = site.engine.call_detail(report.call_id)["record"]
    assert record["breakpoint_node"] == "studio" and record["path"] == ["studio", "bye"]
