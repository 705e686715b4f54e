"""A simulated `Call`: scripted caller turns, every prompt and action recorded.

Each `listen` takes the next turn of the script (say text, press keys, stay silent, hang up); when
the script runs out the caller hangs up (`CallEnded`). Prompts are rendered with their variables,
as a caller would hear them. Spoken language is guessed from the text: CJK → `cmn` (or the first
non-English language listened for), anything else → `en`.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ivr.call import (
    CallEnded,
    CallerAudio,
    CallerInput,
    CaptureEnd,
    CaptureSpec,
    DigitsInput,
    ListenSpec,
    NoInput,
    PlaybackOutcome,
    PlaybackResult,
    Prompt,
    QueueOutcomeKind,
    QueueRequest,
    QueueResult,
    SpeechInput,
    TransferContext,
    TransferResult,
)
from ivr.media.tones import tone

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ids = itertools.count(1)


class TurnKind(enum.Enum):
    SAY = "say"
    KEYS = "keys"
    SILENCE = "silence"
    HANGUP = "hangup"


@dataclass(slots=True, frozen=True)
class Turn:
    kind: TurnKind
    value: str = ""
    confidence: float = 1.0
    """Recognizer confidence for `say` turns."""
    ends: CaptureEnd = CaptureEnd.SILENCE
    """For a `say` turn taken by `capture` (a message): how the caller ended it."""

    @classmethod
    def say(cls, text: str, confidence: float = 1.0) -> Turn:
        return cls(TurnKind.SAY, text, confidence)

    @classmethod
    def message(cls, text: str, ends: CaptureEnd = CaptureEnd.TERMINATOR, confidence: float = 0.8) -> Turn:
        """Leave a voice message saying `text` (recorded as a tone of one second per ten characters)."""
        return cls(TurnKind.SAY, text, confidence, ends)

    @classmethod
    def keys(cls, digits: str) -> Turn:
        return cls(TurnKind.KEYS, digits)

    @classmethod
    def silence(cls) -> Turn:
        return cls(TurnKind.SILENCE)

    @classmethod
    def hangup(cls) -> Turn:
        return cls(TurnKind.HANGUP)


def render(prompt: Prompt) -> str:
    """The prompt's text with its `{placeholders}` filled."""
    return _PLACEHOLDER.sub(lambda m: prompt.variables.get(m.group(1), m.group(0)), prompt.text)


def guess_language(text: str, listening: Sequence[str]) -> str:
    if _CJK.search(text):
        return next((lang for lang in listening if lang != "en"), "cmn")
    return "en"


class ActionKind(enum.Enum):
    SPOKE = "spoke"
    HEARD = "heard"
    ENQUEUED = "enqueued"
    TRANSFERRED = "transferred"
    HUNG_UP = "hung_up"
    RECORDED = "recorded"
    PLAYED_AUDIO = "played_audio"


@dataclass(slots=True, frozen=True)
class Action:
    """One thing that happened on the simulated line, in order."""

    kind: ActionKind
    text: str
    prompt_id: str = ""
    dialect: str = ""


@dataclass(slots=True)
class SimCall:
    """Implements `ivr.call.Call` from a script; inspect `actions`, `spoken` and `requests` after."""

    script: Sequence[Turn] = ()
    caller: str = "13800138000"
    dialed: str = "95519"
    call_id: str = field(default_factory=lambda: f"sim-{next(_ids)}")
    queue_results: Mapping[str, QueueOutcomeKind] = field(default_factory=dict)
    """Per-queue outcome; queues not listed are answered."""
    transfer_accepted: bool = True
    transfer_context: TransferContext | None = None
    """The context the flow's last transfer carried."""
    observer: Callable[[Action], None] | None = None
    """Called with every action as it happens (the simulator interleaves them with journey steps)."""
    actions: list[Action] = field(default_factory=list)
    requests: list[QueueRequest] = field(default_factory=list)
    listens: list[ListenSpec] = field(default_factory=list)
    records: list[CaptureSpec] = field(default_factory=list)
    played_audio: list[NDArray[np.int16]] = field(default_factory=list)
    _turn: int = 0
    _ended: bool = False

    @property
    def spoken(self) -> list[str]:
        return [a.text for a in self.actions if a.kind is ActionKind.SPOKE]

    @property
    def prompt_ids(self) -> list[str]:
        return [a.prompt_id for a in self.actions if a.kind is ActionKind.SPOKE]

    @property
    def ended(self) -> bool:
        return self._ended

    def _act(self, action: Action) -> None:
        self.actions.append(action)
        if self.observer is not None:
            self.observer(action)

    def _check(self) -> None:
        if self._ended:
            raise CallEnded(f"call {self.call_id} has ended")

    def _speak(self, prompts: Sequence[Prompt]) -> None:
        for p in prompts:
            self._act(Action(ActionKind.SPOKE, render(p), p.prompt_id, p.dialect))

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        self._check()
        self._speak(prompts)
        return PlaybackResult(PlaybackOutcome.COMPLETED, played_s=float(len(prompts)))

    async def listen(self, spec: ListenSpec, prompts: Sequence[Prompt] = ()) -> CallerInput:
        self._check()
        self._speak(prompts)
        self.listens.append(spec)
        if self._turn >= len(self.script):
            self._hang_up("script ended")
            raise CallEnded(f"caller of {self.call_id} hung up (script ended)")
        turn = self.script[self._turn]
        self._turn += 1
        result: CallerInput
        if turn.kind is TurnKind.HANGUP:
            self._hang_up("caller hung up")
            raise CallEnded(f"caller of {self.call_id} hung up")
        if turn.kind is TurnKind.SAY:
            result = SpeechInput(turn.value, turn.confidence, guess_language(turn.value, spec.languages))
        elif turn.kind is TurnKind.KEYS:
            result = DigitsInput(turn.value, terminated=turn.value.endswith(spec.terminator))
        else:
            result = NoInput()
        self._act(Action(ActionKind.HEARD, _describe(result)))
        return result

    async def capture(self, spec: CaptureSpec) -> CallerAudio:
        """Takes the next turn: a `say`/`message` turn is the message (a 440 Hz tone standing in for the
        voice, its text the transcript), a key in `end_keys` ends at once, silence is no input."""
        self._check()
        self.records.append(spec)
        turn = self.script[self._turn] if self._turn < len(self.script) else Turn.hangup()
        self._turn += 1
        audio = np.zeros(0, dtype=np.int16)
        transcript: SpeechInput | None = None
        if turn.kind is TurnKind.SAY:
            seconds = min(spec.max_length_s, max(0.5, len(turn.value) / 10))
            audio = tone((440.0,), seconds, level_dbfs=-16.0)
            language = guess_language(turn.value, spec.transcribe)
            if spec.transcribe:
                transcript = SpeechInput(turn.value, turn.confidence, language, duration_s=seconds)
            ended_by = turn.ends
        elif turn.kind is TurnKind.KEYS and turn.value[:1] in spec.end_keys:
            ended_by = CaptureEnd.TERMINATOR
        elif turn.kind is TurnKind.HANGUP:
            ended_by = CaptureEnd.HANGUP
        else:
            ended_by = CaptureEnd.NO_INPUT
        self._act(Action(ActionKind.RECORDED, f"{len(audio) / 8000:.1f} s, {ended_by.value}"))
        if ended_by is CaptureEnd.HANGUP:
            self._hang_up("caller hung up")
        return CallerAudio(audio, ended_by, transcript)

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult:
        self._check()
        self.played_audio.append(audio)
        self._act(Action(ActionKind.PLAYED_AUDIO, f"{len(audio) / 8000:.1f} s"))
        return PlaybackResult(PlaybackOutcome.COMPLETED, played_s=len(audio) / 8000)

    async def enqueue(self, request: QueueRequest) -> QueueResult:
        self._check()
        self.requests.append(request)
        self._act(Action(ActionKind.ENQUEUED, request.queue))
        kind = self.queue_results.get(request.queue, QueueOutcomeKind.ANSWERED)
        if kind is QueueOutcomeKind.ABANDONED:
            self._hang_up("abandoned in queue")
        return QueueResult(
            kind,
            request.queue,
            wait_s=0.0,
            agent_id="sim-agent" if kind is QueueOutcomeKind.ANSWERED else None,
        )

    async def transfer(self, target: str, *, context: TransferContext | None = None,
                       bridge: bool = False) -> TransferResult:
        self._check()
        self.transfer_context = context
        self._act(Action(ActionKind.TRANSFERRED, target))
        if self.transfer_accepted:
            self._ended = True
        return TransferResult(self.transfer_accepted, 202 if self.transfer_accepted else 403)

    async def hangup(self) -> None:
        if not self._ended:
            self._hang_up("flow hung up")

    def _hang_up(self, why: str) -> None:
        self._ended = True
        self._act(Action(ActionKind.HUNG_UP, why))


def _describe(result: CallerInput) -> str:
    if isinstance(result, SpeechInput):
        return f"say {result.text!r} ({result.language})"
    if isinstance(result, DigitsInput):
        return f"keys {result.digits}"
    return "silence"
