"""Nodes that hand the caller on: `queue` (a human, with context) and `transfer` (a SIP URI)."""

from __future__ import annotations

from ivr.call import QueueOutcomeKind, QueueRequest, QueueResult, RecordingMode, TransferContext
from ivr.flow.events import StepKind
from ivr.flow.expr import format_value
from ivr.flow.model import QueueNode, TransferNode
from ivr.flow.nodes.http import render_url
from ivr.flow.runtime import ERROR_ROUTE, CallRuntime
from ivr.journey import Outcome

_OUTCOMES: dict[QueueOutcomeKind, Outcome | None] = {
    QueueOutcomeKind.ANSWERED: Outcome.TO_AGENT,
    QueueOutcomeKind.CALLBACK: Outcome.CALLBACK,
    QueueOutcomeKind.ABANDONED: Outcome.ABANDONED,
    QueueOutcomeKind.OVERFLOWED: None,
    QueueOutcomeKind.UNAVAILABLE: None,
}


async def enqueue(
    rt: CallRuntime,
    queue: str,
    *,
    priority: int,
    skills: dict[str, int] | None = None,
    context: dict[str, str] | None = None,
    recording: RecordingMode | None = None,
) -> QueueResult:
    """Join a queue, record it, and set the outcome the result implies."""
    request = QueueRequest(
        queue=queue,
        priority=priority,
        skills=skills or {},
        dialect=rt.dialect,
        context=context or rt.agent_context(),
        recording=recording,
    )
    rt.record.queue = queue
    rt.emit(StepKind.ENQUEUED, {"queue": queue, "priority": priority})
    result = await rt.call.enqueue(request)
    rt.record.wait_s = result.wait_s
    if result.agent_id:
        rt.record.agent_id = result.agent_id
    for transfer in result.transfers:  # agents handed the caller on: the chain, in order
        rt.emit(StepKind.AGENT_TRANSFERRED, {"by": transfer.by_agent, "kind": transfer.kind, "to": transfer.target,
                                             "to_kind": transfer.target_kind, "status": transfer.status,
                                             "at_s": transfer.at_s})
    if result.transfers:
        first = result.transfers[0].by_agent
        rt.variables["agent_chain"] = " > ".join([first, *(t.target for t in result.transfers)])
    rt.emit(
        StepKind.QUEUE_RESULT,
        {"queue": queue, "result": result.kind.value, "wait_s": result.wait_s, "target": result.target or ""},
    )
    outcome = _OUTCOMES[result.kind]
    if outcome is not None:
        rt.finish(outcome)
    return result


async def run_queue(node: QueueNode, rt: CallRuntime) -> str | None:
    if node.prompt is not None:
        await rt.play([node.prompt])
    result = await enqueue(
        rt,
        node.queue,
        priority=node.priority,
        skills=dict(node.skills),
        context=rt.agent_context(node.context),
        recording=node.recording,
    )
    kind = result.kind
    if kind is QueueOutcomeKind.ANSWERED:
        return node.answered
    if kind is QueueOutcomeKind.CALLBACK:
        return node.callback
    if kind is QueueOutcomeKind.ABANDONED:
        return node.abandoned
    if kind is QueueOutcomeKind.OVERFLOWED:
        if node.overflow is not None:
            return node.overflow
        if result.target and result.target in rt.flow.spec.queues and result.target != node.queue:
            await enqueue(rt, result.target, priority=node.priority, context=rt.agent_context(node.context),
                          recording=node.recording)
            return node.answered if rt.record.outcome is Outcome.TO_AGENT else None
        return None if node.queue == rt.flow.error_queue else ERROR_ROUTE
    # UNAVAILABLE: nobody can serve this queue; the error route's queue, unless that is this one.
    if node.unavailable is not None:
        return node.unavailable
    return None if node.queue == rt.flow.error_queue else ERROR_ROUTE


SUMMARY_CHARS = 200
"""The transcript the next hotline gets is cut to this (a summary, not the whole call)."""


def transfer_context(node: TransferNode, rt: CallRuntime) -> TransferContext:
    """What the next hotline needs so the caller is not asked again: intent, summary, dialect, journey id."""
    record = rt.record
    customer = format_value(rt.variables.get(node.customer)) if node.customer else ""
    return TransferContext(
        journey_id=record.call_id,
        intent=record.intent,
        customer_id=customer,
        summary=record.transcript[:SUMMARY_CHARS],
        dialect=rt.dialect,
        variables={name: format_value(rt.variables.get(name)) for name in node.context or ()},
    )


async def run_transfer(node: TransferNode, rt: CallRuntime) -> str | None:
    if node.prompt is not None:
        await rt.play([node.prompt])
    target = render_url(node.target, rt.variables)
    context = transfer_context(node, rt) if node.context is not None else None
    result = await rt.call.transfer(target, context=context, bridge=node.bridge)
    rt.emit(StepKind.TRANSFERRED, {"target": target, "accepted": result.accepted, "status": result.status,
                                   "context": context is not None})
    if result.accepted:
        rt.finish(Outcome.TRANSFERRED)
        return None
    return node.failed or ERROR_ROUTE
