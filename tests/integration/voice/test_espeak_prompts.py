"""The prompt layer against the real espeak-ng."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ivr.call import Prompt
from ivr.engine.flowprompts import load_flow_prompts
from ivr.media.wav import load_telephony
from ivr.testing import peers
from ivr.voice import (
    DialectSet,
    EspeakNgEngine,
    PromptLibrary,
    PromptSource,
    RenderCache,
    audio_similarity,
    load_dialects,
)
from ivr.voice.audio import load_prompt_audio

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO_FLOWS = ROOT / "tests" / "unit" / "voice" / "data" / "flows"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason),
]


@pytest.fixture(scope="module")
def dialects() -> DialectSet:
    return load_dialects(ROOT / "dialects")


@pytest.fixture
def library(dialects: DialectSet, tmp_path: pathlib.Path) -> PromptLibrary:
    lib = PromptLibrary(dialects, EspeakNgEngine(), RenderCache(tmp_path / "cache"), ROOT / "prompts")
    lib.build(load_flow_prompts(DEMO_FLOWS))
    yield lib  # type: ignore[misc]
    lib.close()


def espeak(tmp_path: pathlib.Path, voice: str, rate: int, text: str) -> np.ndarray:  # type: ignore[type-arg]
    """A direct espeak-ng render, independent of ivr.voice, at 8 kHz."""
    out = tmp_path / f"direct-{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), text], check=True)
    return load_telephony(out)


def test_every_shipped_voice_is_installed(dialects: DialectSet) -> None:
    installed = EspeakNgEngine().voices()
    shipped = {pack.tts.voice: pack.tts.where for pack in dialects.values() if pack.tts is not None}
    assert shipped, "no dialect pack names a TTS voice: nothing was checked"
    missing = {voice: where for voice, where in shipped.items() if voice not in installed}
    assert not missing, missing


async def test_cantonese_prompt_is_the_espeak_yue_render(
    library: PromptLibrary, dialects: DialectSet, tmp_path: pathlib.Path
) -> None:
    text = "你好，歡迎致電客戶服務熱線。"  # the demo flow's Cantonese greeting
    result = await library.audio_for(Prompt("greeting", text, "yue"))
    assert result.cache_keys and all(k in library._fixed for k in result.cache_keys)  # prebuilt
    assert (result.source, result.dialect_used) == (PromptSource.SYNTHESIZED, "yue")
    direct = espeak(tmp_path, "yue", 140, text)
    assert audio_similarity(result.audio, direct).score >= 0.9
    mandarin = espeak(tmp_path, "cmn-latn-pinyin", 140, text)
    assert audio_similarity(result.audio, mandarin).score < 0.5


async def test_minnan_caller_hears_the_minnan_recording_or_mandarin(
    library: PromptLibrary, tmp_path: pathlib.Path
) -> None:
    greeting = await library.audio_for(Prompt("greeting", "", "nan"))
    assert (greeting.source, greeting.dialect_used) == (PromptSource.RECORDED, "nan")
    assert (
        audio_similarity(greeting.audio, load_prompt_audio(ROOT / "prompts" / "nan" / "greeting.wav")).score
        > 0.99
    )
    transfer = await library.audio_for(Prompt("transfer_agent", "", "nan"))
    assert (transfer.source, transfer.dialect_used, transfer.fallback_from) == (
        PromptSource.SYNTHESIZED,
        "cmn",
        "nan",
    )
    assert (
        audio_similarity(
            transfer.audio, espeak(tmp_path, "cmn-latn-pinyin", 140, "正在为您转接人工服务，请稍候。")
        ).score
        >= 0.9
    )
    # The Minnan stand-in is not the Mandarin greeting.
    mandarin_greeting = await library.audio_for(Prompt("greeting", "", "cmn"))
    assert audio_similarity(greeting.audio, mandarin_greeting.audio).score < 0.5


async def test_prompt_with_variables_renders_and_caches_the_spoken_values(
    library: PromptLibrary, tmp_path: pathlib.Path
) -> None:
    variables = {"policy_no": "P2026000123", "amount": "1234.50", "date": "2026-11-23"}
    result = await library.audio_for(Prompt("policy_balance", "", "en", variables))
    assert result.spoken_text is not None and "twenty twenty-six" in result.spoken_text
    assert 5.0 < result.duration_s < 30.0
    # The caller's own values (amount, policy, date) are cached apart, under personal/, for the purge.
    cache = tmp_path / "cache"
    assert all((cache / k[:2] / f"{k}.wav").is_file() or (cache / "personal" / k[:2] / f"{k}.wav").is_file()
               for k in result.cache_keys)
    assert any((cache / "personal").rglob("*.wav")), "the spoken values were not cached as personal renders"
    amount = espeak(tmp_path, "en-us", 150, "one thousand two hundred thirty-four yuan and fifty fen")
    assert audio_similarity(result.audio, amount, max_lag_s=30.0).score > 0.5


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "240"}  # rich wraps table cells to the width
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", "--log-level", "warning", "prompts", *args],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def flow_dirs() -> list[pathlib.Path]:
    """The demo hotline's flows once they exist, and the voice tests' own flow."""
    shipped = ROOT / "flows"
    return [DEMO_FLOWS, *([shipped] if any(shipped.glob("*.yaml")) else [])]


@pytest.mark.parametrize("flows", flow_dirs(), ids=lambda p: p.name)
def test_cli_build_then_check_pass_from_an_empty_cache(flows: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cache = str(tmp_path / "prompt-cache")
    build = run_cli("build", "--flows", str(flows), "--cache", cache, "--quiet")
    assert build.returncode == 0, build.stderr
    assert any((tmp_path / "prompt-cache").glob("*/*.wav"))
    check = run_cli("check", "--flows", str(flows), "--cache", cache)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Prompts by dialect" in check.stdout and "not rendered yet" not in check.stdout
    assert "recorded" in check.stdout and "fallback from nan to cmn" in check.stdout


def test_cli_check_exits_1_when_a_prompt_cannot_be_supplied(tmp_path: pathlib.Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.yaml").write_text(
        # A Minnan-only text: valid for the flow, but Minnan has no voice and this prompt no recording.
        "id: f\ndialects: [nan]\ndefault_dialect: nan\nqueues: [general]\non_error: {queue: general}\n"
        "prompts:\n  menu: {nan: 請揤一。}\nnodes:\n  bye: {type: hangup, prompt: menu}\n",
        encoding="utf-8",
    )
    check = run_cli("check", "--flows", str(tmp_path / "flows"), "--cache", str(tmp_path / "c"))
    assert check.returncode == 1
    assert "error: flow 'f': prompt 'menu' unavailable for dialect 'nan'" in check.stderr
    build = run_cli("build", "--flows", str(tmp_path / "flows"), "--cache", str(tmp_path / "c"), "--quiet")
    assert build.returncode == 1 and "prompt 'menu' unavailable for dialect 'nan'" in build.stderr


def test_cli_reports_a_broken_dialect_pack_with_its_line(tmp_path: pathlib.Path) -> None:
    packs = tmp_path / "dialects"
    shutil.copytree(ROOT / "dialects", packs)
    (packs / "yue.yaml").write_text(
        (packs / "yue.yaml").read_text().replace("rate_wpm: 140", "rate_wpm: quick")
    )
    check = run_cli(
        "check", "--flows", str(DEMO_FLOWS), "--dialects", str(packs), "--cache", str(tmp_path / "c")
    )
    assert check.returncode == 1
    assert f"{packs}/yue.yaml:8:13: tts rate_wpm must be a whole number" in check.stderr
