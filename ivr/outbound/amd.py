"""Answering-machine detection on the first seconds after answer, in the spirit of Asterisk's app_amd.

A person answers with a short greeting ("喂？", "hello?", "您好") and then waits for us; a machine
(voicemail, an operator's announcement) talks on, in several words, often ending with a beep; a line
that answers with ring-back or dead air is no person either. The detector is sans-I/O: feed it 20 ms
frames of 8 kHz linear audio (`feed(frame)`), it returns an `AmdDecision` once it knows, and keeps
reporting a `beep` (the "leave your message after the tone") while fed after that.

Per frame: webrtcvad says voice or not, a spectrum test says pure tone (beep, ring-back: not voice),
and an energy floor drops faint noise. Then Asterisk's rules, with its parameter names:

- initial silence longer than `initial_silence_ms` before any voice → MACHINE (dead air, ring-back)
- voice in the greeting longer than `greeting_ms` → MACHINE (a recorded greeting talks on)
- more than `maximum_words` words → MACHINE
- a beep → MACHINE
- a greeting followed by `after_greeting_silence_ms` of silence → HUMAN (they wait for us)
- nothing decided by `total_analysis_ms` → HUMAN (not sure: a person is the costlier miss)

The defaults were chosen on the tuning half of the generated labelled set (bench/amd.py --half tune);
the evaluation half is only ever measured.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import webrtcvad
from numpy.typing import NDArray

FRAME_SAMPLES = 160
FRAME_MS = 20
RATE_HZ = 8000


class AmdVerdict(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"


class AmdReason(enum.Enum):
    INITIAL_SILENCE = "initial_silence"
    LONG_GREETING = "long_greeting"
    MAX_WORDS = "max_words"
    LONG_WORD = "long_word"
    BEEP = "beep"
    HUMAN_GREETING = "human_greeting"
    NOT_SURE = "not_sure"


@dataclass(slots=True, frozen=True)
class AmdConfig:
    initial_silence_ms: int = 2500
    greeting_ms: int = 1500
    after_greeting_silence_ms: int = 1000
    total_analysis_ms: int = 5000
    minimum_word_ms: int = 100
    between_words_silence_ms: int = 150
    maximum_words: int = 3
    maximum_word_ms: int = 5000
    silence_threshold: int = 256
    """RMS below this is silence whatever the VAD says (Asterisk's silenceThreshold)."""
    vad_mode: int = 3
    beep_ms: int = 120
    """A steady pure tone this long in 350-2500 Hz, not a ring-back frequency, is a beep."""
    tone_purity: float = 0.8
    """Share of a frame's energy in its two strongest spectral peaks for it to count as a tone."""


@dataclass(slots=True, frozen=True)
class AmdDecision:
    verdict: AmdVerdict
    reason: AmdReason
    at_ms: int
    """Audio time of the decision from the first frame fed."""
    words: int
    greeting_ms: int


class FrameKind(enum.Enum):
    SILENCE = "silence"
    VOICE = "voice"
    TONE = "tone"


_RINGBACK_HZ = (425.0, 440.0, 450.0, 480.0)
_WINDOW = np.hanning(2 * FRAME_SAMPLES)
_BIN_HZ = RATE_HZ / (2 * FRAME_SAMPLES)


class ToneMeter:
    """Is a frame a pure tone, and of which frequency? Over the last two frames (25 Hz bins)."""

    def __init__(self, purity: float) -> None:
        self.purity = purity
        self._last = np.zeros(FRAME_SAMPLES, dtype=np.float64)

    def frequency(self, frame: NDArray[np.float64]) -> float | None:
        window = np.concatenate([self._last, frame]) * _WINDOW
        self._last = frame
        power = np.abs(np.fft.rfft(window)) ** 2
        total = float(power.sum())
        if total <= 0.0:
            return None
        peak = int(np.argmax(power))
        near = slice(max(peak - 2, 0), peak + 3)
        first = float(power[near].sum())
        rest = power.copy()
        rest[near] = 0.0
        second = int(np.argmax(rest))
        near2 = slice(max(second - 2, 0), second + 3)
        share = (first + float(rest[near2].sum())) / total
        return peak * _BIN_HZ if share >= self.purity else None


class AmdDetector:
    def __init__(self, config: AmdConfig = AmdConfig()) -> None:
        self.config = config
        self._vad = webrtcvad.Vad(config.vad_mode)
        self._tones = ToneMeter(config.tone_purity)
        self.elapsed_ms = 0
        self.decision: AmdDecision | None = None
        self.beep_at_ms: int | None = None
        self._in_initial_silence = True
        self._silence_ms = 0
        self._voice_run_ms = 0
        self._greeting_ms = 0
        self._words = 0
        self._in_word = False
        self._tone_ms = 0
        self._tone_hz: float | None = None

    def classify(self, frame: NDArray[np.int16]) -> tuple[FrameKind, float | None]:
        samples = frame.astype(np.float64)
        rms = float(np.sqrt(np.mean(samples * samples)))
        hz = self._tones.frequency(samples)
        if rms < self.config.silence_threshold:
            return FrameKind.SILENCE, None
        if hz is not None:
            return FrameKind.TONE, hz
        voiced = self._vad.is_speech(frame.astype(np.int16).tobytes(), RATE_HZ)
        return (FrameKind.VOICE if voiced else FrameKind.SILENCE), None

    def feed(self, frame: NDArray[np.int16]) -> AmdDecision | None:
        """One 20 ms frame (160 samples); returns the decision on the frame that makes it."""
        if frame.size != FRAME_SAMPLES:
            raise ValueError(f"AMD frames are {FRAME_SAMPLES} samples, got {frame.size}")
        self.elapsed_ms += FRAME_MS
        kind, hz = self.classify(frame)
        self._watch_beep(kind, hz)
        if self.decision is not None:
            return None
        decision = self._step(kind)
        if decision is None and self.beep_at_ms is not None:
            decision = self._decide(AmdVerdict.MACHINE, AmdReason.BEEP)
        if decision is None and self.elapsed_ms >= self.config.total_analysis_ms:
            decision = self._decide(AmdVerdict.HUMAN, AmdReason.NOT_SURE)
        self.decision = decision
        return decision

    def _watch_beep(self, kind: FrameKind, hz: float | None) -> None:
        steady = (kind is FrameKind.TONE and hz is not None and 350.0 <= hz <= 2500.0
                  and not any(abs(hz - r) <= 2 * _BIN_HZ for r in _RINGBACK_HZ)
                  and (self._tone_hz is None or abs(hz - self._tone_hz) <= 2 * _BIN_HZ))
        if steady:
            self._tone_ms += FRAME_MS
            self._tone_hz = hz
            if self._tone_ms >= self.config.beep_ms and self.beep_at_ms is None:
                self.beep_at_ms = self.elapsed_ms
        else:
            self._tone_ms = 0
            self._tone_hz = hz if kind is FrameKind.TONE else None

    def _decide(self, verdict: AmdVerdict, reason: AmdReason) -> AmdDecision:
        return AmdDecision(verdict, reason, self.elapsed_ms, self._words, self._greeting_ms)

    def _step(self, kind: FrameKind) -> AmdDecision | None:
        c = self.config
        if kind is not FrameKind.VOICE:  # a tone is not a voice: ring-back counts as silence
            self._silence_ms += FRAME_MS
            self._voice_run_ms = 0
            if self._in_word and self._silence_ms >= c.between_words_silence_ms:
                self._in_word = False
            if self._in_initial_silence:
                if self._silence_ms >= c.initial_silence_ms:
                    return self._decide(AmdVerdict.MACHINE, AmdReason.INITIAL_SILENCE)
            elif self._silence_ms >= c.after_greeting_silence_ms:
                return self._decide(AmdVerdict.HUMAN, AmdReason.HUMAN_GREETING)
            return None
        self._voice_run_ms += FRAME_MS
        self._greeting_ms += FRAME_MS
        if self._voice_run_ms >= c.minimum_word_ms:
            if not self._in_word:
                self._in_word = True
                self._words += 1
                self._in_initial_silence = False
            self._silence_ms = 0
        if self._words > c.maximum_words:
            return self._decide(AmdVerdict.MACHINE, AmdReason.MAX_WORDS)
        if self._voice_run_ms >= c.maximum_word_ms:
            return self._decide(AmdVerdict.MACHINE, AmdReason.LONG_WORD)
        if not self._in_initial_silence and self._greeting_ms >= c.greeting_ms:
            return self._decide(AmdVerdict.MACHINE, AmdReason.LONG_GREETING)
        return None


def detect(audio: NDArray[np.int16], config: AmdConfig = AmdConfig()) -> AmdDecision:
    """Run the detector over a whole recording (padded with silence to `total_analysis_ms`)."""
    detector = AmdDetector(config)
    need = config.total_analysis_ms * RATE_HZ // 1000
    if audio.size < need:
        audio = np.concatenate([audio, np.zeros(need - audio.size, dtype=np.int16)])
    for start in range(0, audio.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        decision = detector.feed(audio[start : start + FRAME_SAMPLES])
        if decision is not None:
            return decision
    return detector.decision or AmdDecision(AmdVerdict.HUMAN, AmdReason.NOT_SURE, detector.elapsed_ms, 0, 0)
