"""Runs a flow over one `Call`: one coroutine per call, every step a journey event.

A call keeps the `Flow` object it started with (a reload makes a new object). Any exception inside a
node is logged with its traceback, recorded as a breakpoint and the caller goes to the flow's
`on_error` human queue with everything learned so far — never dropped. `CallEnded` means the caller
hung up: the outcome becomes `abandoned` unless the call had already reached an outcome (an agent
answered, self-service completed).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping

import structlog

from ivr.call import Call, CallEnded, LineFailed
from ivr.clock import Clock
from ivr.flow.errors import FlowRuntimeError
from ivr.flow.events import StepKind
from ivr.flow.expr import Value, format_value
from ivr.flow.messages import MessageBox
from ivr.flow.model import Flow
from ivr.flow.nodes import EXECUTORS, AiohttpClient
from ivr.flow.nodes.routing import enqueue
from ivr.flow.runtime import ERROR_ROUTE, CallRuntime, HttpClient
from ivr.flow.studio import Studio
from ivr.journey import CallRecord, Direction, JourneySink, Outcome

log = structlog.get_logger(__name__)

MAX_BUSY_STEPS = 200
"""Steps without waiting for the caller before the call is declared a runaway (the validator
refuses static busy loops; this catches data-dependent ones)."""


class Interpreter:
    """Shared by every call of an engine; `run` is the per-call coroutine."""

    def __init__(
        self,
        *,
        sink: JourneySink,
        clock: Clock,
        http: HttpClient | None = None,
        messages: MessageBox | None = None,
        studio: Studio | None = None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.messages = messages
        self.studio = studio
        self._own_http = http is None
        self.http: HttpClient = http if http is not None else AiohttpClient()

    async def aclose(self) -> None:
        if self._own_http and isinstance(self.http, AiohttpClient):
            await self.http.aclose()

    def initial_variables(self, flow: Flow, call: Call, overrides: Mapping[str, Value]) -> dict[str, Value]:
        variables: dict[str, Value] = dict(flow.spec.variables)
        variables.setdefault("dialect", flow.spec.default_dialect)
        variables["caller"] = call.caller
        variables["dialed"] = call.dialed
        variables.update(overrides)
        return variables

    async def run(
        self, flow: Flow, call: Call, *, variables: Mapping[str, Value] | None = None,
        direction: Direction = Direction.INBOUND,
    ) -> CallRecord:
        """Run `flow` for `call` to its end; returns the finished record (also given to the sink).
        `direction`: outbound when the engine placed the call (a campaign), recorded with the call."""
        now = self.clock.wall()
        record = CallRecord(
            call_id=call.call_id or uuid.uuid4().hex,
            caller=call.caller,
            dialed=call.dialed,
            started_at=now,
            flow_id=flow.id,
            flow_version=flow.version,
            answered_at=now,
            direction=direction,
        )
        rt = CallRuntime(
            flow=flow,
            call=call,
            sink=self.sink,
            clock=self.clock,
            http=self.http,
            record=record,
            variables=self.initial_variables(flow, call, variables or {}),
            messages=self.messages,
            studio=self.studio,
        )
        inherited = rt.variables.get("inbound_intent")
        if isinstance(inherited, str):  # learned by the hotline that transferred the caller (a trusted peer)
            record.intent = inherited
        structlog.contextvars.bind_contextvars(call_id=record.call_id, flow=flow.id)
        self.sink.call_started(record)
        rt.emit(StepKind.CALL_STARTED, {"flow": flow.id, "version": flow.version})
        caller_gone = False
        try:
            await self._drive(rt)
        except LineFailed as exc:
            caller_gone = True
            rt.breakpoint(StepKind.ERROR, "line_failed", {"error": str(exc), "failure": exc.reason})
            rt.finish(Outcome.ERROR)
            log.warning("line_failed", node=rt.node_id, reason=exc.reason)
        except CallEnded:
            caller_gone = True
            rt.emit(StepKind.CALLER_HUNG_UP)
            rt.finish(Outcome.ABANDONED)
            log.info("caller_hung_up", node=rt.node_id)
        finally:
            record.ended_at = self.clock.wall()
            record.dialect = rt.dialect
            record.variables = {k: format_value(v) for k, v in rt.variables.items()}
            rt.node_id = ""
            rt.emit(StepKind.CALL_FINISHED, {"outcome": record.outcome.value if record.outcome else ""})
            self.sink.call_finished(record)
            structlog.contextvars.unbind_contextvars("call_id", "flow")
        if not caller_gone:
            # Hang up only once the record is on its way to the store: a BYE can take its whole
            # transaction timeout to be answered, and a crash meanwhile must not lose the record.
            with contextlib.suppress(CallEnded):
                await call.hangup()
        return record

    async def _drive(self, rt: CallRuntime) -> None:
        node_id: str | None = rt.flow.start
        busy = 0
        while node_id is not None:
            if node_id == ERROR_ROUTE:
                await self._error_route(rt, reason="no human node in flow")
                return
            node = rt.flow.node(node_id)
            rt.enter(node)
            try:
                busy = 0 if node.WAITS else busy + 1
                if busy > MAX_BUSY_STEPS:
                    raise FlowRuntimeError(
                        f"{busy} steps without waiting for the caller (last node '{node.id}')"
                    )
                node_id = await EXECUTORS[node.kind](node, rt)
            except CallEnded:
                raise
            except Exception as exc:  # the per-call boundary: any node failure goes to a human
                log.error("node_failed", node=node.id, error=str(exc), exc_info=True)
                rt.breakpoint(StepKind.ERROR, "exception", {"error": f"{type(exc).__name__}: {exc}"})
                await self._error_route(rt, reason=str(exc))
                return
        rt.finish_without_human()

    async def _error_route(self, rt: CallRuntime, *, reason: str) -> None:
        """The flow's `on_error`: a human queue with the context, or a clear goodbye if none serves."""
        route = rt.flow.spec.on_error
        queue = rt.flow.error_queue
        try:
            if route.prompt is not None:
                await rt.play([route.prompt])
            if queue is None:
                raise FlowRuntimeError(f"flow '{rt.flow.id}' has no queue for on_error")
            context = {**rt.agent_context(), "error": reason}
            await enqueue(rt, queue, priority=route.priority, context=context)
        except CallEnded:
            raise
        except Exception as exc:
            log.error("error_route_failed", queue=queue, error=str(exc), exc_info=True)
            rt.emit(StepKind.ERROR, {"error": f"on_error failed: {exc}"}, breakpoint=True)
            rt.finish(Outcome.ERROR)
        rt.finish(Outcome.ERROR)
