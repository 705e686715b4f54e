"""What a running flow reports: the kinds of journey steps the interpreter emits."""

from __future__ import annotations

import enum


class StepKind(enum.Enum):
    """The `kind` of a `JourneyEvent` emitted by the interpreter (its value is what is stored)."""

    CALL_STARTED = "call_started"
    NODE_ENTERED = "node_entered"
    PROMPT_PLAYED = "prompt_played"
    INPUT = "input"
    NO_INPUT = "no_input"
    NO_MATCH = "no_match"
    INTENT = "intent"
    CONFIRMED = "confirmed"
    VARIABLE_SET = "variable_set"
    DATA_DIP = "data_dip"
    DATA_DIP_FAILED = "data_dip_failed"
    SCHEDULE = "schedule"
    ENQUEUED = "enqueued"
    QUEUE_RESULT = "queue_result"
    TRANSFERRED = "transferred"
    AGENT_TRANSFERRED = "agent_transferred"
    """An agent handed the caller on (blind or attended): one step per link of the chain."""
    SURVEY = "survey"
    MESSAGE = "message"
    """A voice message was recorded (stored or empty)."""
    PROMPT_RECORDED = "prompt_recorded"
    """The prompt-recording line kept a take as a dialect pack's recording."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    SPEECH_SHED = "speech_shed"
    """The engine's recognizers were too far behind to decode the caller's answer: the node's keys or a human
    serve the turn instead (a breakpoint)."""
    ERROR = "error"
    CALLER_HUNG_UP = "caller_hung_up"
    HANGUP = "hangup"
    CALL_FINISHED = "call_finished"
