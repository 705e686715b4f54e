"""Errors of the dialect-prompt package, all derived from `ivr.errors.IvrError`."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.errors import ConfigError, IvrError


class VoiceError(IvrError):
    """Base of every deliberate error in `ivr.voice`."""


class DialectLoadError(VoiceError, ConfigError):
    """One or more dialect packs are malformed; each problem reads `path:line:col: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class FlowPromptsError(VoiceError, ConfigError):
    """A flow file's `prompts:` section could not be read."""


class SpeakError(VoiceError):
    """A variable's value cannot be spoken as the kind asked for (e.g. `amount` is not a number)."""


class TtsError(VoiceError):
    """The TTS engine failed or is missing a voice; the message names engine, voice and text."""


class AudioFormatError(VoiceError):
    """A recorded prompt file cannot be read; the message names the file and what was expected."""


class PromptUnavailable(VoiceError):
    """No dialect in the caller's fallback chain can supply the prompt (no recording, no usable TTS)."""

    def __init__(self, prompt_id: str, dialect: str, tried: Sequence[tuple[str, str]]) -> None:
        self.prompt_id = prompt_id
        self.dialect = dialect
        self.tried: tuple[tuple[str, str], ...] = tuple(tried)
        detail = "; ".join(f"{code}: {reason}" for code, reason in self.tried) or "no dialect to try"
        super().__init__(f"prompt '{prompt_id}' unavailable for dialect '{dialect}' ({detail})")
