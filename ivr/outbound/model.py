"""A campaign file's typed model: what to call, when, how fast, and what to do after each result.

The YAML is read by the flow language's annotation-driven `Converter` (every problem gets its line and
column), so these dataclasses are written the same way as `ivr.flow.model`: field annotations are the
schema, `metadata={"yaml": ...}` spells a field that is a Python keyword.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Annotated

from ivr.flow.model import Ref, Weekday

TimeZoneName = Annotated[str, Ref.TIMEZONE]
Number = Annotated[str, Ref.NUMBER]
TrunkTemplate = Annotated[str, Ref.SIP_URI]
FlowName = Annotated[str, Ref.VARIABLE]

NIGHT_ENDS = dt.time(8, 0)
NIGHT_STARTS = dt.time(21, 0)
"""Never call before 08:00 or after 21:00 in the callee's time zone, whatever a campaign says."""


class Result(enum.Enum):
    """How one dialling attempt ended."""

    ANSWERED = "answered"
    """A person answered and the flow ran to a result code (it says how the call ended)."""
    INCOMPLETE = "incomplete"
    """A person answered, but the attempt ended without a result code: the callee hung up during machine
    detection or before the flow set its code, or the flow could not start. Retried by the `incomplete` rule."""
    MACHINE = "machine"
    """An answering machine answered (message left or not, per `on_machine`)."""
    BUSY = "busy"
    """486/600: the callee is busy."""
    NO_ANSWER = "no_answer"
    """Rang out: no final answer within `no_answer_s` (we cancelled) or 408/480."""
    REJECTED = "rejected"
    """603 or 403: the callee declined."""
    FAILED = "failed"
    """Any other failure: other 4xx/5xx/6xx, no response, network, or an attempt cut by a restart."""


class OnMachine(enum.Enum):
    LEAVE_MESSAGE = "leave_message"
    """Wait for the beep (or the end of the greeting), run `machine_flow` (the message), hang up: done."""
    RETRY = "retry"
    """Hang up at once and retry by the `machine` retry rule."""
    HANG_UP = "hang_up"
    """Hang up; the target is finished with result machine."""


@dataclass(slots=True, frozen=True)
class CallingWindow:
    """Hours on some weekdays when calls may start, in the callee's local time."""

    start: dt.time = field(metadata={"yaml": "from"})
    end: dt.time = field(metadata={"yaml": "to"})
    days: tuple[Weekday, ...] = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


@dataclass(slots=True, frozen=True)
class Pacing:
    calls_per_s: float = 1.0
    """New calls started per second, over the campaign's trunk."""
    max_concurrent: int = 10
    """Calls of this trunk up at once (ringing or answered)."""


@dataclass(slots=True, frozen=True)
class RetryRule:
    delay_s: float
    """Wait this long after the attempt before the next one."""
    max_attempts: int
    """Attempts in all (the first included) after which this result is final."""


@dataclass(slots=True, frozen=True)
class RetryRules:
    """Per result: when to try again. A result without a rule is final after one attempt."""

    busy: RetryRule | None = None
    no_answer: RetryRule | None = None
    rejected: RetryRule | None = None
    failed: RetryRule | None = None
    machine: RetryRule | None = None
    incomplete: RetryRule | None = None

    def rule(self, result: Result) -> RetryRule | None:
        if result is Result.ANSWERED:
            return None
        rule: RetryRule | None = getattr(self, result.value)
        return rule


@dataclass(slots=True, frozen=True)
class CampaignSpec:
    """One campaign file (`campaigns/*.yaml`)."""

    id: FlowName
    flow: str
    """The flow (its `id`) run when a person answers, with the target's variables."""
    trunk: TrunkTemplate
    """SIP URI template of the callee, `{number}` replaced: `sip:{number}@trunk.example:5060`."""
    caller_id: Number | None = None
    name: str = ""
    priority: int = 0
    """Higher goes first when several campaigns have a target due on the same trunk."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """The callee's time zone when the target does not give one."""
    windows: tuple[CallingWindow, ...] = (CallingWindow(dt.time(9, 0), dt.time(20, 0)),)
    holidays: tuple[dt.date, ...] = ()
    pacing: Pacing = Pacing()
    no_answer_s: float = 30.0
    retry: RetryRules = RetryRules()
    amd: bool = True
    """Run answering-machine detection on answer (off: every answer is a person)."""
    on_machine: OnMachine = OnMachine.RETRY
    machine_flow: str | None = None
    """The flow run after the beep when `on_machine: leave_message` (a message with the target's variables)."""
    record_consent: bool = False
    """Record what the callee says while a person's call runs (the consent), when the engine records calls
    (`recording_dir`): `<day>/<call-id>-consent.wav`, its path in the record's `consent_recording`."""
    result_variable: FlowName = "result_code"
    """The flow variable whose value at the end of the call is the target's result code."""
    targets: str | None = None
    """A CSV file of targets (relative to the campaign file); more may come through the API."""
    do_not_call: str | None = None
    """A file of numbers never to call, one per line (relative to the campaign file); checked at dial time."""
    human_result_codes: tuple[str, ...] = ("wants_call",)
    """Result codes meaning a human had to take over: not counted as completed without a human."""
    completed_result_codes: tuple[str, ...] = ("confirmed", "declined")
    """Result codes that count as a completed visit."""
