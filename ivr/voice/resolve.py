"""Which audio a prompt becomes: recorded beats synthesized, then the next dialect in the chain.

For the caller's dialect and then each fallback in its pack's chain (nan → cmn), the first of:

1. a recording `prompts/<dialect>/<prompt-id>.wav` (only for prompts without `{variables}`: a
   recording cannot say a policy number);
2. TTS in the dialect's voice, when the dialect has a voice and a text it can read (a dialect pack's
   text beats the flow's; romanisation-only voices such as espeak-ng's Hakka cannot read 漢字).

Pure: the recordings on disk are scanned once (`scan_recordings`) and passed in, so a resolution is
a lookup and every choice is explained in the returned `Resolution`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.voice.dialects import DialectSet, TtsSettings, has_hanzi
from ivr.voice.errors import PromptUnavailable
from ivr.voice.speak import Numerals

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RECORDING_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")
"""Recorded prompt file types, in order of preference when one prompt has several."""


class PromptSource(enum.Enum):
    RECORDED = "recorded"
    SYNTHESIZED = "synthesized"


class SkipReason(enum.Enum):
    """Why a dialect in the chain could not supply the prompt."""

    UNKNOWN_DIALECT = "no dialect pack"
    NO_VOICE = "no recording and no TTS voice"
    NO_TEXT = "no recording and no text"
    TEXT_NOT_READABLE = "no recording, and the voice reads romanisation only but the text is in characters"
    RECORDING_NEEDS_VARIABLES = "the recording cannot say the prompt's variables, and no TTS can"


@dataclass(slots=True, frozen=True)
class Resolution:
    """The choice made for one prompt in one dialect, and why."""

    prompt_id: str
    requested: str
    dialect_used: str
    source: PromptSource
    text: str | None = None
    """The template spoken (synthesized), `{placeholders}` still in it."""
    recording: Path | None = None
    tts: TtsSettings | None = None
    numerals: Numerals = Numerals()
    skipped: tuple[tuple[str, SkipReason], ...] = ()
    """Dialects tried before `dialect_used`, with the reason each could not serve."""

    @property
    def fallback_from(self) -> str | None:
        return self.requested if self.dialect_used != self.requested else None

    def describe(self) -> str:
        """`recorded`, `synthesized`, or `fallback from nan to cmn (synthesized)`."""
        if self.fallback_from is None:
            return self.source.value
        return f"fallback from {self.requested} to {self.dialect_used} ({self.source.value})"


def placeholders(text: str) -> tuple[str, ...]:
    return tuple(PLACEHOLDER_RE.findall(text))


def scan_recordings(prompts_dir: Path) -> dict[tuple[str, str], Path]:
    """`prompts/<dialect>/<prompt-id>.<ext>` → {(dialect, prompt id): path}, preferring WAV."""
    found: dict[tuple[str, str], Path] = {}
    if not prompts_dir.is_dir():
        return found
    for suffix in reversed(RECORDING_SUFFIXES):
        for path in sorted(prompts_dir.glob(f"*/*{suffix}")):
            found[(path.parent.name, path.stem)] = path
    return found


class Resolver:
    """Resolves prompt ids to a source, given the packs, the flows' texts and the recordings on disk."""

    __slots__ = ("dialects", "_texts", "_recordings")

    def __init__(
        self,
        dialects: DialectSet,
        texts: Mapping[str, Mapping[str, str]],
        recordings: Mapping[tuple[str, str], Path],
    ) -> None:
        self.dialects = dialects
        self._texts = texts
        self._recordings = recordings

    def with_recording(self, dialect: str, prompt_id: str, path: Path) -> Resolver:
        """The same resolver, knowing one more recording (one just made on the prompt-recording line)."""
        return Resolver(self.dialects, self._texts, {**self._recordings, (dialect, prompt_id): path})

    def text_for(self, prompt_id: str, dialect: str, given: str | None = None) -> str | None:
        """The text to synthesize in `dialect`: a dialect pack's text beats the flows'.

        `given` is the text the call passed for its dialect. It replaces the flows' text for that
        dialect (it may be newer, after a flow reload) and stands alone for a prompt no flow declares;
        where the flows have no text in `dialect` it is ignored, since it is then some other
        dialect's text standing in, and the fallback chain decides that here.
        """
        pack = self.dialects.get(dialect)
        if pack is not None and prompt_id in pack.prompts:
            return pack.prompts[prompt_id]
        known = self._texts.get(prompt_id)
        if known is None:
            return given or None
        if dialect in known:
            return given or known[dialect]
        return None

    def _any_text(self, prompt_id: str, given: str | None) -> str:
        if given:
            return given
        return next(iter(self._texts.get(prompt_id, {}).values()), "")

    def resolve(self, prompt_id: str, dialect: str, text: str | None = None) -> Resolution:
        """The first dialect in `dialect`'s chain that can supply the prompt; `PromptUnavailable` if none.

        `text` is the prompt's text in `dialect` as the call has it (used only for `dialect` itself).
        """
        skipped: list[tuple[str, SkipReason]] = []
        templated = bool(placeholders(self._any_text(prompt_id, text)))
        for code in self.dialects.chain(dialect):
            pack = self.dialects.get(code)
            if pack is None:
                skipped.append((code, SkipReason.UNKNOWN_DIALECT))
                continue
            recording = self._recordings.get((code, prompt_id))
            if recording is not None and not templated:
                return Resolution(
                    prompt_id, dialect, code, PromptSource.RECORDED, recording=recording,
                    numerals=pack.numerals, skipped=tuple(skipped),
                )  # fmt: skip
            template = self.text_for(prompt_id, code, text if code == dialect else None)
            if pack.tts is None:
                reason = SkipReason.NO_VOICE
            elif template is None:
                reason = SkipReason.NO_TEXT
            elif not pack.tts.reads_hanzi and has_hanzi(PLACEHOLDER_RE.sub("", template)):
                reason = SkipReason.TEXT_NOT_READABLE
            else:
                return Resolution(
                    prompt_id, dialect, code, PromptSource.SYNTHESIZED, text=template, tts=pack.tts,
                    numerals=pack.numerals, skipped=tuple(skipped),
                )  # fmt: skip
            skipped.append((code, SkipReason.RECORDING_NEEDS_VARIABLES if recording else reason))
        raise PromptUnavailable(prompt_id, dialect, [(code, why.value) for code, why in skipped])
