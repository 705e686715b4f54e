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
from ivr.engine.flowprompts import load_flow_prompts
from ivr.voice import (
    EspeakNgEngine,
    PromptLibrary,
    RenderCache,
    ResolvedPrompt,
    audio_similarity,
    load_dialects,
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


async def resolved(
    library: PromptLibrary, prompt_id: str, dialect: str, variables: Mapping[str, str] | None = None
) -> ResolvedPrompt:
    return await library.audio_for(Prompt(prompt_id, "", dialect, dict(variables or {})))


@dataclass(slots=True, frozen=True)
class Found:
    """Where `expected` sits in a recording and how alike the two are there."""

    start_s: float
    """Where the best alignment puts the start of `expected` in the recording."""
    chunk_scores: tuple[float, ...]
    """`audio_similarity` of each second of `expected` (not silent) with what was heard there."""

    @property
    def score(self) -> float:
        """Mean similarity over the seconds of the prompt: 1.0 is the same audio throughout."""
        return sum(self.chunk_scores) / len(self.chunk_scores) if self.chunk_scores else 0.0


CHUNK_S = 1.0
CHUNK_SLACK_S = 0.1
"""How far each second may drift from where the second before was found (a late packet, a jitter-buffer gap, a
sender's stall: each shifts what follows)."""
LOST_REACH = 3
"""How many times wider the first second, and each after one not found, is looked for: the whole recording's
alignment may be that of the part after a stall, and a stall longer than the slack moves what follows further."""
_QUIET_RMS = 100.0


def locate(heard: NDArray[np.int16], expected: NDArray[np.int16], *, after_s: float = 0.0) -> Found:
    """Find `expected` in `heard` (from `after_s` on), then score it second by second.

    The first correlation runs over the whole recording: other prompts lower its score but do not
    move its peak. Each second of the prompt is then compared with what was heard there, allowing a
    little drift, so a frame lost on a busy machine costs one second's score, not the whole match.
    """
    offset = int(after_s * RATE_HZ)
    tail = heard[offset:]
    if tail.size == 0 or expected.size == 0:
        return Found(after_s, ())
    coarse = audio_similarity(tail, expected, max_lag_s=tail.size / RATE_HZ)
    start = offset + max(0, coarse.lag_samples)
    chunk, slack = int(CHUNK_S * RATE_HZ), int(CHUNK_SLACK_S * RATE_HZ)
    scores: list[float] = []
    drift, lost = 0, True  # until a second is found where expected, each is looked for wider
    for begin in range(0, expected.size, chunk):
        part = expected[begin : begin + chunk]
        if part.size < chunk // 4 or float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) < _QUIET_RMS:
            continue
        reach = slack * (LOST_REACH if lost else 1)
        lo = max(0, start + drift + begin - reach)
        window = heard[lo : start + drift + begin + part.size + reach]
        match, lag = _best_within(window, part)
        lost = match < SAME
        if not lost:  # follow the stream: a stall of the sender shifts everything after it, not one second
            drift = lo + lag - (start + begin)
        scores.append(match)
    return Found(start / RATE_HZ, tuple(scores))


def _best_within(window: NDArray[np.int16], part: NDArray[np.int16]) -> tuple[float, int]:
    """Best normalised correlation of `part` with a same-length stretch of `window`, and where in it."""
    best, where = 0.0, 0
    y = part.astype(np.float64) - part.mean()
    ny = float(np.sqrt(np.dot(y, y)))
    if ny == 0.0:
        return 0.0, 0
    for lag in range(0, max(1, window.size - part.size + 1)):
        x = window[lag : lag + part.size].astype(np.float64)
        if x.size < part.size:
            break
        x -= x.mean()
        nx = float(np.sqrt(np.dot(x, x)))
        if nx > 0.0 and (score := float(np.dot(x, y)) / (nx * ny)) > best:
            best, where = score, lag
    return best, where


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
            yield PlayedPrompt(
                str(entry["prompt"]), str(entry["dialect"]), str(entry["source"]), float(entry["duration_s"]), call_id
            )
