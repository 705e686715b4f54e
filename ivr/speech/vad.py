"""Endpointing with webrtcvad, sans-I/O: 20 ms frames of 8 kHz audio in, timed events out.

The `Endpointer` never reads a clock: each frame comes with `now`, and `next_deadline()` /
`handle_timer(now)` cover the no-input timeout when no audio arrives at all. It answers three
questions for a `listen`:

* when did the caller start talking? `SpeechStarted` once `start_voiced_ms` of the last
  `start_window_ms` are voiced (default 120 of 200 ms) — the call layer stops the prompt on it
  (barge-in); its audio starts `pre_roll_ms` before the first voiced frame, so the utterance keeps
  its first syllable;
* when did they stop? `UtteranceEnded` after `end_of_speech_s` of unvoiced audio (default 0.7 s),
  or at `max_utterance_s`;
* did they say anything at all? `NoInputTimedOut` at `no_input_timeout_s` without speech.

Durations inside an utterance are counted in audio (frames), so a late or bunched delivery of
frames does not shorten the caller's pause; the no-input timeout is clock time.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ivr.call import ListenSpec
from ivr.speech.events import EndpointEvent, EndReason, NoInputTimedOut, SpeechStarted, UtteranceEnded

__all__ = ["EndpointState", "Endpointer", "EndpointerConfig", "FRAME_MS", "FRAME_SAMPLES"]

RATE_HZ = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE_HZ * FRAME_MS // 1000


@dataclass(slots=True, frozen=True)
class EndpointerConfig:
    no_input_timeout_s: float = 5.0
    end_of_speech_s: float = 0.7
    max_utterance_s: float = 15.0
    start_voiced_ms: int = 120
    """Voiced audio within `start_window_ms` that counts as speech (and barge-in)."""
    start_window_ms: int = 200
    pre_roll_ms: int = 300
    aggressiveness: int = 2
    """webrtcvad mode 0 (least) .. 3 (most aggressive at calling audio unvoiced)."""

    def __post_init__(self) -> None:
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"webrtcvad aggressiveness must be 0..3, got {self.aggressiveness}")
        if self.start_voiced_ms > self.start_window_ms:
            raise ValueError(
                f"start_voiced_ms ({self.start_voiced_ms}) cannot exceed "
                f"start_window_ms ({self.start_window_ms})"
            )

    @classmethod
    def from_listen_spec(cls, spec: ListenSpec, **overrides: int) -> EndpointerConfig:
        """The timeouts a flow node asked for."""
        return cls(
            no_input_timeout_s=spec.no_input_timeout_s,
            end_of_speech_s=spec.end_of_speech_s,
            max_utterance_s=spec.max_utterance_s,
            **overrides,
        )


class EndpointState(enum.Enum):
    WAITING = "waiting"
    IN_SPEECH = "in_speech"
    DONE = "done"


def _frames(ms: float) -> int:
    return max(1, round(ms / FRAME_MS))


class Endpointer:
    """One listen's endpointer; make a new one (or `restart`) for each prompt-and-listen."""

    def __init__(self, config: EndpointerConfig, *, now: float) -> None:
        import webrtcvad

        self._config = config
        self._vad = webrtcvad.Vad(config.aggressiveness)
        self._window_frames = _frames(config.start_window_ms)
        self._start_frames = _frames(config.start_voiced_ms)
        self._pre_roll_frames = _frames(config.pre_roll_ms)
        self._end_frames = _frames(config.end_of_speech_s * 1000)
        self._max_frames = _frames(config.max_utterance_s * 1000)
        self.restart(now)

    def restart(self, now: float) -> None:
        """Start listening again (arms the no-input timeout from `now`)."""
        self._state = EndpointState.WAITING
        self._deadline: float | None = now + self._config.no_input_timeout_s
        self._recent: deque[tuple[npt.NDArray[np.int16], bool, float]] = deque(
            maxlen=self._window_frames + self._pre_roll_frames
        )
        self._window: deque[bool] = deque(maxlen=self._window_frames)
        """Whether each of the last `start_window_ms` of frames was voiced (counted on every frame)."""
        self._utterance: list[npt.NDArray[np.int16]] = []
        self._trailing_unvoiced = 0
        self._voiced_span = 0

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open: feed each frame to the recognizer too."""
        return self._state is EndpointState.IN_SPEECH

    @property
    def pause_s(self) -> float:
        """Unvoiced audio since the caller's last voiced frame in the utterance (0 while they talk)."""
        return self._trailing_unvoiced * FRAME_MS / 1000 if self._state is EndpointState.IN_SPEECH else 0.0

    def next_deadline(self) -> float | None:
        """Clock time of the no-input timeout while waiting for speech; None otherwise."""
        return self._deadline if self._state is EndpointState.WAITING else None

    def handle_timer(self, now: float) -> list[EndpointEvent]:
        if self._state is EndpointState.WAITING and self._deadline is not None and now >= self._deadline:
            self._state = EndpointState.DONE
            return [NoInputTimedOut(at_s=now)]
        return []

    def is_voiced(self, frame: npt.NDArray[np.int16]) -> bool:
        return bool(self._vad.is_speech(frame.tobytes(), RATE_HZ))

    def process(self, frame: npt.NDArray[np.int16], now: float) -> list[EndpointEvent]:
        """Take one 20 ms frame received at `now`; return what it changed."""
        if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
            raise ValueError(
                f"endpointer frames must be {FRAME_SAMPLES} int16 samples, got {frame.dtype}{frame.shape}"
            )
        if self._state is EndpointState.DONE:
            return []
        if self._state is EndpointState.WAITING:
            timed_out = self.handle_timer(now)
            if timed_out:
                return timed_out
            return self._wait(frame, now)
        return self._continue(frame, now)

    def _wait(self, frame: npt.NDArray[np.int16], now: float) -> list[EndpointEvent]:
        voiced = self.is_voiced(frame)
        self._recent.append((frame, voiced, now))
        self._window.append(voiced)
        if not voiced or sum(self._window) < self._start_frames:
            return []
        window = list(self._recent)[-self._window_frames :]
        window_start = len(self._recent) - len(window)
        onset_index = window_start + next(i for i, (_, v, _) in enumerate(window) if v)
        start = max(0, onset_index - self._pre_roll_frames)
        kept = list(self._recent)[start:]
        self._utterance = [f for f, _, _ in kept]
        self._state = EndpointState.IN_SPEECH
        self._voiced_span = len(self._recent) - onset_index
        self._trailing_unvoiced = 0
        onset_s = self._recent[onset_index][2] - FRAME_MS / 1000
        self._recent.clear()
        self._window.clear()
        return [SpeechStarted(at_s=now, onset_s=onset_s, audio=np.concatenate(self._utterance))]

    def _continue(self, frame: npt.NDArray[np.int16], now: float) -> list[EndpointEvent]:
        self._utterance.append(frame)
        if self.is_voiced(frame):
            self._voiced_span += self._trailing_unvoiced + 1
            self._trailing_unvoiced = 0
        else:
            self._trailing_unvoiced += 1
        if self._trailing_unvoiced >= self._end_frames:
            return [self._end(now, EndReason.END_OF_SPEECH)]
        if self._voiced_span + self._trailing_unvoiced >= self._max_frames:
            return [self._end(now, EndReason.MAX_LENGTH)]
        return []

    def _end(self, now: float, reason: EndReason) -> UtteranceEnded:
        self._state = EndpointState.DONE
        audio = np.concatenate(self._utterance)
        self._utterance = []
        return UtteranceEnded(
            at_s=now, reason=reason, audio=audio, speech_s=self._voiced_span * FRAME_MS / 1000
        )
