"""Dialect prompts: packs, resolution with fallback chains, TTS, render cache, spoken numbers.

The call layer builds one `PromptLibrary` before serving and asks it `await audio_for(prompt)`;
see `render.py`. `ivr prompts build` / `ivr prompts check` are `check.run_build` / `check.run_check`,
given the flows by `ivr.engine.flowprompts` (this package never imports `ivr.flow`).
"""

from __future__ import annotations

from ivr.voice.cache import DEFAULT_CACHE_DIR, RenderCache, purge_personal_renders, render_key
from ivr.voice.check import CheckReport, CheckRow, check_prompts, run_build, run_check
from ivr.voice.compare import AudioMatch, audio_similarity
from ivr.voice.dialects import DialectPack, DialectSet, TtsSettings, load_dialect_pack, load_dialects
from ivr.voice.errors import (
    DialectLoadError,
    FlowPromptsError,
    PromptUnavailable,
    SpeakError,
    TtsError,
    VoiceError,
)
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.memory import DialectMemory, MemoryDialectMemory, SqliteDialectMemory, remembered_dialect
from ivr.voice.render import BuildReport, PromptLibrary, ResolvedPrompt, split_template
from ivr.voice.resolve import PromptSource, Resolution, Resolver, SkipReason, scan_recordings
from ivr.voice.speak import Numerals, NumeralStyle, SayAs, kind_for, say, say_default
from ivr.voice.tts import EspeakNgEngine, TtsEngine

__all__ = [
    "DEFAULT_CACHE_DIR",
    "AudioMatch",
    "BuildReport",
    "CheckReport",
    "CheckRow",
    "DialectLoadError",
    "DialectMemory",
    "DialectPack",
    "DialectSet",
    "EspeakNgEngine",
    "FlowPrompts",
    "FlowPromptsError",
    "MemoryDialectMemory",
    "NumeralStyle",
    "Numerals",
    "PromptLibrary",
    "PromptSource",
    "PromptUnavailable",
    "RenderCache",
    "Resolution",
    "ResolvedPrompt",
    "Resolver",
    "SayAs",
    "SkipReason",
    "SpeakError",
    "SqliteDialectMemory",
    "TtsEngine",
    "TtsError",
    "TtsSettings",
    "VoiceError",
    "audio_similarity",
    "check_prompts",
    "kind_for",
    "load_dialect_pack",
    "load_dialects",
    "purge_personal_renders",
    "remembered_dialect",
    "render_key",
    "run_build",
    "run_check",
    "say",
    "say_default",
    "scan_recordings",
    "split_template",
]
