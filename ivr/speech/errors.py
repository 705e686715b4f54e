"""Errors raised by the speech package (recognizer engines, models, intent training)."""

from __future__ import annotations

from pathlib import Path

from ivr.errors import IvrError


class SpeechError(IvrError):
    """Base of every speech error."""


class SpeechModelError(SpeechError):
    """A recognizer engine or model for a dialect is missing or unusable; raised at start-up."""

    def __init__(self, dialect: str, path: Path | str | None, reason: str) -> None:
        where = f" at {path}" if path is not None else ""
        super().__init__(f"speech model for dialect {dialect!r}{where}: {reason}")
        self.dialect = dialect
        self.path = None if path is None else Path(path)
        self.reason = reason


class RecognizerError(SpeechError):
    """A recognizer failed while decoding (the call layer treats it as no-match and carries on)."""


class IntentTrainingError(SpeechError, ValueError):
    """The intent examples cannot train a classifier (no intents, an intent with no phrase...)."""


class IntentSourceError(SpeechError):
    """A flow file's `intents:` section cannot be read; the message names the file and the problem."""
