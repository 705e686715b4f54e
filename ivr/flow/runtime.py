"""One call's state while a flow runs: variables, journey steps, prompts in the caller's dialect."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from ivr.call import Call, CallerInput, DigitsInput, NoInput, Prompt, SpeechInput
from ivr.clock import Clock
from ivr.fallback import fallback_chain
from ivr.flow.events import StepKind
from ivr.flow.expr import Value, format_value
from ivr.flow.messages import MessageBox
from ivr.flow.model import Flow, ListeningNode, Node
from ivr.flow.studio import Studio
from ivr.journey import CallRecord, JourneyEvent, JourneySink, Outcome

log = structlog.get_logger(__name__)

ERROR_ROUTE = "<on_error>"
"""A next-node value meaning: hand the caller to the flow's `on_error` human queue."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(slots=True, frozen=True)
class HttpReply:
    status: int
    body: Any
    """Parsed JSON (None when the body is not JSON)."""


class HttpClient(Protocol):
    """The data-dip seam: `ivr.flow.nodes.http.AiohttpClient` in service, a stub in unit tests."""

    async def request(
        self, method: str, url: str, *, json_body: Mapping[str, Any] | None, timeout_s: float
    ) -> HttpReply:
        """Raise `TimeoutError` on timeout and `OSError`/`ivr.flow.nodes.http.HttpFailed` when unreachable."""
        ...


@dataclass(slots=True)
class CallRuntime:
    flow: Flow
    call: Call
    sink: JourneySink
    clock: Clock
    http: HttpClient
    record: CallRecord
    variables: dict[str, Value]
    node_id: str = ""
    stack: list[str] = field(default_factory=list)
    utterances: list[str] = field(default_factory=list)
    messages: MessageBox | None = None
    """Where `message` nodes leave voice messages (None: this engine takes none)."""
    studio: Studio | None = None
    """What `record_prompts` nodes record into (None: this engine has no prompt-recording line)."""
    _seq: int = 0

    # -- journey ------------------------------------------------------------------------------

    def emit(
        self, kind: StepKind, data: Mapping[str, Any] | None = None, *, breakpoint: bool = False
    ) -> None:
        event = JourneyEvent(
            call_id=self.record.call_id,
            seq=self._seq,
            at=self.clock.wall(),
            node=self.node_id,
            kind=kind.value,
            data=dict(data or {}),
            breakpoint=breakpoint,
        )
        self._seq += 1
        self.sink.journey_event(event)

    def breakpoint(self, kind: StepKind, reason: str, data: Mapping[str, Any] | None = None) -> None:
        """Self-service failed here: a human will take over with what we know."""
        self.record.breakpoint_node = self.node_id
        self.emit(kind, {"reason": reason, **(data or {})}, breakpoint=True)
        log.warning("journey_breakpoint", node=self.node_id, reason=reason)

    def enter(self, node: Node) -> None:
        self.node_id = node.id
        self.record.path.append(node.id)
        self.emit(StepKind.NODE_ENTERED, {"type": node.kind.value})

    def finish(self, outcome: Outcome) -> None:
        """Set the call's outcome unless an earlier, more telling one is already set."""
        if self.record.outcome is None:
            self.record.outcome = outcome

    def finish_without_human(self) -> None:
        """The flow ends here: self-served, unless the caller was sent to a queue that could not take
        them (an answered, abandoned or callback queue result has set the outcome already)."""
        self.finish(Outcome.UNSERVED if self.record.queue else Outcome.SELF_SERVED)

    # -- variables ----------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        value = self.variables.get("dialect")
        spec = self.flow.spec
        return value if isinstance(value, str) and value in spec.dialects else spec.default_dialect

    def set_var(self, name: str, value: Value) -> None:
        self.variables[name] = value
        self.emit(StepKind.VARIABLE_SET, {"name": name, "value": format_value(value)})

    # -- prompts ------------------------------------------------------------------------------

    def text_for(self, texts: Mapping[str, str], dialect: str) -> str:
        """The text in `dialect`, else along its fallback chain (the validator made sure one has it)."""
        for d in fallback_chain(dialect, self.flow.fallbacks, self.flow.spec.default_dialect):
            if d in texts:
                return texts[d]
        return next(iter(texts.values()), "")

    def prompt(self, prompt_id: str, extra: Mapping[str, Value] | None = None) -> Prompt:
        dialect = self.dialect
        text = self.text_for(self.flow.spec.prompts[prompt_id], dialect)
        merged: dict[str, Value] = {**self.variables, **(extra or {})}
        variables = {name: format_value(merged.get(name)) for name in _PLACEHOLDER.findall(text)}
        return Prompt(prompt_id=prompt_id, text=text, dialect=dialect, variables=variables)

    async def play(self, prompt_ids: Sequence[str], *, barge_in: bool = False) -> None:
        prompts = [self.prompt(p) for p in prompt_ids]
        if not prompts:
            return
        result = await self.call.play(prompts, barge_in=barge_in)
        for p in prompts:
            self.emit(StepKind.PROMPT_PLAYED, {"prompt": p.prompt_id, "dialect": p.dialect})
        if result.outcome.value != "completed":
            self.emit(StepKind.INPUT, {"barge_in": result.outcome.value})

    def note_input(self, result: CallerInput, *prompt_ids: str) -> None:
        """Record the prompts the listen played (in order) and what the caller answered."""
        for prompt_id in prompt_ids:
            self.emit(StepKind.PROMPT_PLAYED, {"prompt": prompt_id, "dialect": self.dialect})
        if isinstance(result, SpeechInput):
            self.utterances.append(result.text)
            self.record.transcript = " | ".join(self.utterances)
            self.emit(
                StepKind.INPUT,
                {"speech": result.text, "confidence": result.confidence, "language": result.language},
            )
        elif isinstance(result, DigitsInput):
            self.emit(StepKind.INPUT, {"digits": result.digits})
        elif isinstance(result, NoInput):
            self.emit(StepKind.NO_INPUT)

    def failure_target(self, node: ListeningNode) -> str:
        """Where a node goes when the caller could not be understood: `on_fail`, else a human."""
        return node.on_fail or self.human_target()

    def human_target(self) -> str:
        return self.flow.spec.human or ERROR_ROUTE

    def agent_context(self, extra: Sequence[str] = ()) -> dict[str, str]:
        """What the agent sees on answering: everything self-service learned."""
        record = self.record
        ctx = {
            "caller": record.caller,
            "dialect": self.dialect,
            "intent": record.intent,
            "confidence": "" if record.confidence is None else f"{record.confidence:.2f}",
            "transcript": record.transcript,
            "path": " > ".join(record.path[-12:]),
            "breakpoint": record.breakpoint_node,
            "flow": f"{self.flow.id} {self.flow.version}",
        }
        for name in extra:
            ctx[name] = format_value(self.variables.get(name))
        return ctx
