"""What a caller should hear, and where in a recording they heard it.

The expected audio comes from a `PromptLibrary` built exactly as `ivr serve` builds its own (the
repository's dialect packs, recordings and render cache, the same TTS engine), so a test compares
the engine's output with an independent resolution of the same prompt, not with the engine's words.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ivr.call import Prompt
from ivr.voice import (
    AudioMatch,
    EspeakNgEngine,
    PromptLibrary,
    RenderCache,
    ResolvedPrompt,
    audio_similarity,
    load_dialects,
    load_flow_prompts,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
RATE_HZ = 8000
SAME = 0.9
"""`audio_similarity` score at and above which two recordings are the same audio."""


def prompt_library() -> PromptLibrary:
    """The engine's prompt library, built from the same folders (the render cache makes it quick)."""
    library = PromptLibrary(
        load_dialects(ROOT / "dialects"), EspeakNgEngine(), RenderCache(ROOT / "var" / "prompt-cache"),
        ROOT / "prompts",
    )  # fmt: skip
    library.build(load_flow_prompts(ROOT / "flows"))
    return library


async def resolved(library: PromptLibrary, prompt_id: str, dialect: str,
                   variables: Mapping[str, str] | None = None) -> ResolvedPrompt:
    return await library.audio_for(Prompt(prompt_id, "", dialect, dict(variables or {})))


@dataclass(slots=True, frozen=True)
class Found:
    """Where `expected` sits in a recording and how alike the two are there."""

    match: AudioMatch
    start_s: float

    @property
    def score(self) -> float:
        return self.match.score


def locate(heard: NDArray[np.int16], expected: NDArray[np.int16], *, after_s: float = 0.0) -> Found:
    """Find `expected` in `heard` (from `after_s` on), then score it on that stretch alone.

    The first correlation runs over the whole recording, so other prompts lower its score but not
    where its peak is; the second compares the aligned stretch only, which is what a listener hears.
    """
    offset = int(after_s * RATE_HZ)
    tail = heard[offset:]
    if tail.size == 0 or expected.size == 0:
        return Found(AudioMatch(0.0, 0), after_s)
    coarse = audio_similarity(tail, expected, max_lag_s=tail.size / RATE_HZ)
    start = max(0, coarse.lag_samples)
    stretch = tail[start : start + expected.size]
    fine = audio_similarity(stretch, expected, max_lag_s=0.05)
    return Found(fine, (offset + start) / RATE_HZ)


@dataclass(slots=True, frozen=True)
class PlayedPrompt:
    """One `prompt_played` line of the engine's log: what the engine resolved and played."""

    prompt: str
    dialect: str
    source: str
    duration_s: float
    call_id: str


def played_prompts(log: pathlib.Path, call_id: str) -> Iterator[PlayedPrompt]:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"prompt_played"' not in line:
            continue
        entry = json.loads(line)
        if entry.get("call_id") == call_id:
            yield PlayedPrompt(str(entry["prompt"]), str(entry["dialect"]), str(entry["source"]),
                               float(entry["duration_s"]), call_id)
