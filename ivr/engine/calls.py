"""Answering calls: each INVITE gets its number's flow, a `SipCall`, and runs to the end of the flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog

from ivr.clock import Clock
from ivr.engine.context import context_variables, inbound_context
from ivr.engine.deskcalls import DeskCalls
from ivr.engine.dialer import SipLegs
from ivr.engine.ears import Ears
from ivr.engine.events import CallAnswered, CallEvents, CallFinished
from ivr.engine.handoff import QueueService
from ivr.engine.sipcall import SipCall
from ivr.flow import Flow, FlowRegistry, Interpreter
from ivr.flow.expr import Value
from ivr.sip.identity import caller_identity
from ivr.sipua.calls import IncomingCall
from ivr.store.dialectworker import DialectLookup

log = structlog.get_logger(__name__)


class FlowCalls:
    """The user agent's `on_incoming_call`: answer, run the flow, release (one task per call)."""

    def __init__(
        self,
        *,
        registry: FlowRegistry,
        interpreter: Interpreter,
        legs: SipLegs,
        ears: Callable[[], Ears | None],
        queues: QueueService | None,
        events: CallEvents,
        dialect_memory: DialectLookup,
        flow_variables: Mapping[str, Value],
        clock: Clock,
        trusted: Callable[[str], bool] = lambda host: False,
        context_peer: Callable[[str], bool] = lambda host: False,
        desk: DeskCalls | None = None,
    ) -> None:
        """`trusted(host)`: INVITEs from `host` come from a trunk whose P-Asserted-Identity we believe;
        `context_peer(host)`: a hotline whose transfer context (User-to-User, X-IVR) the flow may read;
        `desk`: takes agents' phones' calls (feature codes, consultations) before any flow."""
        self._registry = registry
        self._interpreter = interpreter
        self._legs = legs
        self._ears = ears
        self._queues = queues
        self._events = events
        self._dialect_memory = dialect_memory
        self._flow_variables = dict(flow_variables)
        self._clock = clock
        self._trusted = trusted
        self._context_peer = context_peer
        self._desk = desk
        self.in_progress: set[asyncio.Task[object]] = set()
        """The calls' tasks, for the drain to wait on."""

    async def __call__(self, incoming: IncomingCall) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.in_progress.add(task)
        task.add_done_callback(self.in_progress.discard)
        if self._desk is not None and await self._desk.take(incoming):
            return
        flow = self._registry.flow_for_number(incoming.dialed)
        if flow is None:  # removed between admission and now
            incoming.reject(404)
            return
        leg = await self._legs.answer(incoming)
        if leg is None:
            return
        # The caller's number: asserted by a trusted trunk, else From's (anyone can write any From).
        identity = caller_identity(incoming.request, trusted=self._trusted(incoming.source[0]))
        call = SipCall(leg=leg, caller=identity.label, dialed=incoming.dialed, ears=self._ears(),
                       queues=self._queues, clock=self._clock, dialer=self._legs)
        inbound: dict[str, Value] = {}
        peer = incoming.source[0]
        if self._context_peer(peer):  # a hotline we trust tells us what its caller already said
            context = inbound_context(incoming.header)
            if context is not None:
                inbound.update(context_variables(context, peer))
                log.info("inbound_context", peer=peer, journey_id=context.journey_id, intent=context.intent)
        try:
            await self._run_flow(flow, call, verified=identity.verified, inbound=inbound)
        finally:
            await call.aclose()

    async def _run_flow(self, flow: Flow, call: SipCall, *, verified: bool, inbound: Mapping[str, Value]) -> None:
        variables: dict[str, Value] = {**self._flow_variables, **inbound}
        remembered = await self._dialect_memory.lookup(call.caller)
        if remembered:
            variables["remembered_dialect"] = remembered
            if remembered in flow.spec.dialects:
                # The caller is greeted in it even when the flow never reaches a node that reads
                # `remembered_dialect` (a caller the back end does not know, a failed lookup).
                variables["dialect"] = remembered
        inbound_dialect = inbound.get("inbound_dialect")
        if isinstance(inbound_dialect, str) and inbound_dialect in flow.spec.dialects:
            variables["dialect"] = inbound_dialect  # the hotline that sent the caller spoke it with them
        dialect = str(variables.get("dialect") or flow.spec.default_dialect)
        self._events.emit(CallAnswered(call.call_id, call.caller, call.dialed, flow.id, dialect, self._clock.wall(),
                                       caller_verified=verified))
        try:
            await self._interpreter.run(flow, call, variables=variables)
        finally:
            self._events.emit(CallFinished(call.call_id))


__all__ = ["FlowCalls"]
