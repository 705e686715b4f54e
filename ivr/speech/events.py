"""Events the endpointer (`ivr.speech.vad.Endpointer`) returns as call audio flows through it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


class EndReason(enum.Enum):
    END_OF_SPEECH = "end_of_speech"
    """Trailing silence reached the configured end-of-speech time."""
    MAX_LENGTH = "max_length"
    """The utterance reached its maximum length while the caller was still talking."""


@dataclass(slots=True, frozen=True, eq=False)
class SpeechStarted:
    """The caller started talking: the barge-in signal (stop the prompt now) and the utterance start."""

    at_s: float
    """Clock time (the `now` of the frame that confirmed speech)."""
    onset_s: float
    """Clock time of the start of the first voiced frame of the utterance."""
    audio: npt.NDArray[np.int16] = field(repr=False)
    """Pre-roll plus the voiced frames so far, so a recognizer fed from here keeps the start."""


@dataclass(slots=True, frozen=True, eq=False)
class UtteranceEnded:
    """The utterance is over; `audio` holds all of it, pre-roll included."""

    at_s: float
    reason: EndReason
    audio: npt.NDArray[np.int16] = field(repr=False)
    speech_s: float
    """Seconds from onset to the last voiced frame."""


@dataclass(slots=True, frozen=True)
class NoInputTimedOut:
    """Nobody spoke before the no-input timeout."""

    at_s: float


EndpointEvent = SpeechStarted | UtteranceEnded | NoInputTimedOut
