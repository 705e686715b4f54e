"""The Call protocol: the one seam between telephony and call flows.

The flow interpreter runs against `Call` and never imports SIP; `ivr.engine.sipcall.SipCall` is the
real implementation (a SIP dialog with RTP media) and `ivr.testing.simcall` a simulated one. Both
sides import only this module, so everything a flow can ask of a call, and everything a call can
answer, is here.

Every awaitable method raises `CallEnded` once the caller has hung up, so a flow needs no polling
to notice an abandoned call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ivr.errors import IvrError


class CallEnded(IvrError):
    """The caller hung up (or the call was torn down) while the flow was waiting on it."""


class LineFailed(CallEnded):
    """The line itself failed for good (no media could flow either way): the call side has hung up, and
    `reason` (e.g. `no_media`, `send_failed`) is what the record says. Not the caller's choice, so not
    an abandon."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True, frozen=True)
class Prompt:
    """One prompt to speak, by id: the call resolves it to recorded audio or rendered TTS."""

    prompt_id: str
    """The id declared in the flow's `prompts:` section (e.g. `greeting`)."""
    text: str
    """The prompt's text in `dialect`, after the flow's choice; used by TTS and the simulator."""
    dialect: str
    """Dialect code the caller should hear (`cmn`, `yue`, `en`...); the call applies fallbacks."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Values for `{placeholders}` in the text, spoken per language (`{amount}`, `{date}`...)."""


class PlaybackOutcome(enum.Enum):
    COMPLETED = "completed"
    INTERRUPTED_BY_SPEECH = "interrupted_by_speech"
    INTERRUPTED_BY_DIGIT = "interrupted_by_digit"


@dataclass(slots=True, frozen=True)
class PlaybackResult:
    outcome: PlaybackOutcome
    played_s: float
    """Seconds of audio the caller heard before the end or the barge-in."""


@dataclass(slots=True, frozen=True)
class ListenSpec:
    """What input a node accepts and how long to wait for it (VoiceXML's field + properties)."""

    speech: bool = True
    """Listen for speech (the recognizer runs); keys are always accepted when `max_digits > 0`."""
    languages: tuple[str, ...] = ("cmn",)
    """Dialect codes whose recognizers listen at once; the result says which one heard the caller."""
    phrases: tuple[str, ...] = ()
    """Phrases to bias recognition toward (a grammar built from the flow's intents), may be empty."""
    closed: bool = False
    """`phrases` are every answer the turn takes (the short answers a re-ask named), not a bias for open speech: a
    dialect with an `answers` engine hears the turn with it (`ivr.flow.nodes.menus.answer_spec` says when)."""
    max_digits: int = 1
    """Keys to collect; 0 disables keys. Collection ends early at `terminator`."""
    min_digits: int = 1
    terminator: str = "#"
    barge_in: bool = True
    """Speech or a key stops the prompt played before listening; the utterance keeps its start."""
    no_input_timeout_s: float = 5.0
    """Silence after the prompt before `NoInput`."""
    inter_digit_timeout_s: float = 3.0
    end_of_speech_s: float = 0.7
    """Trailing silence that ends an utterance."""
    max_utterance_s: float = 15.0
    typeahead: bool = True
    """Keys pressed before this turn began (during earlier prompts) count as its input. False for a question
    whose answer must come after it is asked: consent must not be given by a key pressed during the risk warning."""


@dataclass(slots=True, frozen=True)
class Hypothesis:
    text: str
    confidence: float


@dataclass(slots=True, frozen=True)
class SpeechInput:
    """The caller said something."""

    text: str
    confidence: float
    """Recognizer confidence 0..1 (1 for typed text in the simulator)."""
    language: str
    """Dialect code of the recognizer that heard it."""
    nbest: tuple[Hypothesis, ...] = ()
    duration_s: float = 0.0
    shed: bool = False
    """The engine's recognizers were too far behind to take this utterance (overload): it was not decoded and
    `text` is empty. The flow serves the turn another way (its keys or a human), not by asking to speak again."""


@dataclass(slots=True, frozen=True)
class DigitsInput:
    """The caller pressed keys."""

    digits: str
    terminated: bool = False
    """True when collection ended on the terminator key rather than length or timeout."""


@dataclass(slots=True, frozen=True)
class NoInput:
    """Nothing was said or pressed before the no-input timeout."""


CallerInput = SpeechInput | DigitsInput | NoInput


class QueueOutcomeKind(enum.Enum):
    ANSWERED = "answered"
    """An agent took the call; `enqueue` returns when the agent leg ends."""
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    """Max wait or length reached; `target` names where the flow should go next."""
    CALLBACK = "callback"
    """The caller left a callback number and kept their place; the call ends."""
    UNAVAILABLE = "unavailable"
    """No agent can ever serve this queue now (none logged in, queue closed)."""


class RecordingMode(enum.Enum):
    """Whether a call with an agent is recorded."""

    ALWAYS = "always"
    CONSENT = "consent"
    """After the caller heard the `recording_consent` announcement (played before the agent is connected)."""
    NEVER = "never"


@dataclass(slots=True, frozen=True)
class QueueRequest:
    """Hand the caller to a human queue with everything learned so far."""

    queue: str
    priority: int = 0
    """Higher is served first (the elderly green channel uses a high priority)."""
    skills: Mapping[str, int] = field(default_factory=dict)
    """Required skills with minimum level, e.g. {"claims": 1}."""
    dialect: str = "cmn"
    context: Mapping[str, str] = field(default_factory=dict)
    """What the agent sees: intent, confidence, transcript, breakpoint, caller data..."""
    recording: RecordingMode | None = None
    """Record the call with the agent (the flow node's choice); None: the queue's policy decides."""


@dataclass(slots=True, frozen=True)
class QueueResult:
    kind: QueueOutcomeKind
    queue: str
    wait_s: float = 0.0
    agent_id: str | None = None
    target: str | None = None
    """For OVERFLOWED: the queue or site the caller was sent to."""
    transfers: tuple[AgentTransfer, ...] = ()
    """Agents handing the caller on during the call (blind, attended), in order: the chain of who served."""
    callback_number: str | None = None


@dataclass(slots=True, frozen=True)
class AgentTransfer:
    """An agent handed the caller on: to another agent, a queue or a number (the chain in the record)."""

    by_agent: str
    kind: str
    """`blind` (REFER) or `attended` (REFER with Replaces, after a consultation call)."""
    target: str
    """The agent id, queue id or number the caller went to."""
    target_kind: str
    """`agent`, `queue` or `number`."""
    status: int
    """The final SIP status reported to the agent's phone (200: done)."""
    at_s: float
    """Seconds into the agent part of the call (from the first agent's answer)."""


@dataclass(slots=True, frozen=True)
class TransferContext:
    """What a transfer to another hotline carries, so the caller is not asked again there."""

    journey_id: str
    """This call's id at the sending hotline: its record and journey there."""
    intent: str = ""
    customer_id: str = ""
    summary: str = ""
    """What the caller said, shortened."""
    dialect: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Further flow variables the node names."""


@dataclass(slots=True, frozen=True)
class TransferResult:
    accepted: bool
    status: int = 0
    """The final SIP status of the transfer attempt (202 accepted REFER, 200 for a bridged leg...)."""


class CaptureEnd(enum.Enum):
    """Why a recording of the caller ended."""

    TERMINATOR = "terminator"
    """The caller pressed one of `CaptureSpec.end_keys` (the key is not part of the audio)."""
    SILENCE = "silence"
    """The caller spoke, then stayed silent `silence_s`."""
    MAX_LENGTH = "max_length"
    NO_INPUT = "no_input"
    """The caller said nothing within `no_input_timeout_s` of the beep."""
    HANGUP = "hangup"
    """The caller hung up while being recorded: what was said is kept (as voicemail does)."""


@dataclass(slots=True, frozen=True)
class CaptureSpec:
    """How to record what the caller says (VoiceXML's `<record>`)."""

    beep: bool = True
    """Play a short beep when recording starts."""
    max_length_s: float = 60.0
    end_keys: str = "#"
    """Keys that end the recording; empty: no key does."""
    silence_s: float = 3.0
    """Silence after speech that ends the recording."""
    no_input_timeout_s: float = 5.0
    """Silence from the start (nothing said at all) that ends it as `NO_INPUT`."""
    transcribe: tuple[str, ...] = ()
    """Dialect codes whose recognizers transcribe the recording when it ends; empty: no transcript."""
    phrases: tuple[str, ...] = ()
    """Phrases to bias the transcription toward (the flow's intent phrases), may be empty."""


@dataclass(slots=True, frozen=True)
class CallerAudio:
    """What the caller said, as 8 kHz PCM16 mono, and why the recording ended."""

    audio: NDArray[np.int16]
    ended_by: CaptureEnd
    transcript: SpeechInput | None = None
    """The recognizers' best reading of the audio (None when not asked for, or nothing was heard)."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / 8000.0


@runtime_checkable
class Call(Protocol):
    """One live call as a flow sees it."""

    @property
    def call_id(self) -> str: ...

    @property
    def caller(self) -> str:
        """The caller's number (user part of From)."""
        ...

    @property
    def dialed(self) -> str:
        """The number the caller dialed (user part of the request URI)."""
        ...

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        """Speak the prompts in order; return when done or, if allowed, interrupted."""
        ...

    async def listen(self, spec: ListenSpec, prompts: Sequence[Prompt] = ()) -> CallerInput:
        """Play `prompts` (barge-in per `spec`) then wait for speech or keys per `spec`."""
        ...

    async def capture(self, spec: CaptureSpec) -> CallerAudio:
        """Record what the caller says (beep first, per `spec`) until a key, silence, max length or
        hang-up. A hang-up during the recording returns what was said (`CaptureEnd.HANGUP`); only a
        call that had already ended raises `CallEnded`."""
        ...

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult:
        """Play 8 kHz PCM16 audio to the caller (a recording played back); a key stops it with `barge_in`."""
        ...

    async def enqueue(self, request: QueueRequest) -> QueueResult:
        """Wait in a human queue (music, position announcements) until answered or given up."""
        ...

    async def transfer(self, target: str, *, context: TransferContext | None = None,
                       bridge: bool = False) -> TransferResult:
        """Transfer the caller to a SIP URI: REFER the caller's side there (blind), or with `bridge` place
        the call ourselves and relay until it ends. `context` goes along in User-to-User and X-IVR headers
        (in the Refer-To URI's headers for a REFER, RFC 7433 section 4.2)."""
        ...

    async def hangup(self) -> None:
        """End the call from our side (idempotent)."""
        ...
