"""Callers coming and going: arrival (a full queue overflows), max wait (overflow to a queue, a
site, a callback offer or goodbye), callbacks that keep the caller's place, and the caller's leg
ending wherever they are.
"""

from __future__ import annotations

from ivr.acd.agent import AgentStatus
from ivr.acd.commands import Abandon, Enqueue, RequestCallback
from ivr.acd.config import OverflowKind, OverflowTarget
from ivr.acd.events import (
    AcdEvent,
    CallbackRegistered,
    CallbackSuggested,
    CallerEnqueued,
    CallerLeft,
    CallerMoved,
    RejectReason,
    SitesWidened,
    WithdrawReason,
)
from ivr.acd.queue import Caller
from ivr.acd.state import AcdState, DeadlineKind, Rejected
from ivr.call import QueueOutcomeKind, QueueResult


class Overflow:
    """Arrivals, waits that run out, callbacks and callers leaving."""

    __slots__ = ("state",)

    def __init__(self, state: AcdState) -> None:
        self.state = state

    def enqueue(self, cmd: Enqueue, node: str, out: list[AcdEvent]) -> None:
        s = self.state
        request = cmd.request
        if request.queue not in s.queues:
            raise Rejected(RejectReason.UNKNOWN_QUEUE, f"no queue {request.queue!r} for call {cmd.call_id!r}")
        if cmd.call_id in s.callers or cmd.call_id in s.connected:
            raise Rejected(RejectReason.DUPLICATE_CALL, f"call {cmd.call_id!r} is already queued")
        queue = s.queues[request.queue]
        while queue.config.max_length is not None and len(queue) >= queue.config.max_length:
            target = queue.config.overflow
            assert target is not None  # the loader requires an overflow target with max_length
            queue.overflowed += 1
            if target.kind is not OverflowKind.QUEUE or target.target is None:
                result = QueueResult(QueueOutcomeKind.OVERFLOWED, queue.config.queue_id, target=str(target))
                out.append(CallerLeft(cmd.call_id, node, result))
                return
            queue = s.queues[target.target]
        s.seq += 1
        caller = Caller(
            call_id=cmd.call_id,
            queue=queue.config.queue_id,
            node=node,
            request=request,
            seq=s.seq,
            enqueued_at=s.now,
            queue_entered_at=s.now,
        )
        if not queue.config.join_empty and not any(
            a.status is not AgentStatus.LOGGED_OUT and s.member(a, caller) for a in s.agents.values()
        ):
            out.append(CallerLeft(cmd.call_id, node, QueueResult(QueueOutcomeKind.UNAVAILABLE, caller.queue)))
            return
        queue.add(caller)
        s.callers[caller.call_id] = caller
        self._arm(caller)
        out.append(CallerEnqueued(caller.call_id, caller.queue, node, caller.priority, queue.position(caller)))
        s.mark_caller(caller.call_id)

    def _arm(self, caller: Caller) -> None:
        s = self.state
        cfg = s.queues[caller.queue].config
        if cfg.max_wait_s is not None:
            s.push(caller.queue_entered_at + cfg.max_wait_s, DeadlineKind.MAX_WAIT, caller.call_id)
        for step in (1, 2):
            at = s.widen_at(caller, step)
            if at > s.now:
                s.push(at, DeadlineKind.RECHECK, caller.call_id)

    def abandon(self, cmd: Abandon, node: str, out: list[AcdEvent]) -> None:
        """The caller's leg ended: waiting or being rung, they leave now and every ringing agent is
        withdrawn (not a miss). A caller already bridged ends the agent's call instead."""
        s = self.state
        caller = s.callers.get(cmd.call_id)
        if caller is not None:
            s.withdraw_caller(caller, WithdrawReason.CALLER_LEFT, out)
            s.queues[caller.queue].abandoned += 1
            s.leave(caller, QueueOutcomeKind.ABANDONED, out)
        elif cmd.call_id in s.connected:  # the caller hung up on the agent
            s.end_call(s.connected[cmd.call_id], out)
        else:
            raise Rejected(RejectReason.UNKNOWN_CALL, f"call {cmd.call_id!r} is not queued")

    def request_callback(self, cmd: RequestCallback, node: str, out: list[AcdEvent]) -> None:
        s = self.state
        caller = s.callers.get(cmd.call_id)
        if caller is None:
            raise Rejected(RejectReason.UNKNOWN_CALL, f"call {cmd.call_id!r} is not queued")
        if not cmd.number:
            raise Rejected(RejectReason.INVALID, f"call {cmd.call_id!r}: empty callback number")
        s.withdraw_caller(caller, WithdrawReason.CALLER_LEFT, out)  # the caller is leaving the line
        first = caller.callback_number is None
        caller.callback_number = cmd.number
        queue = s.queues[caller.queue]
        out.append(CallbackRegistered(caller.call_id, caller.queue, cmd.number, queue.position(caller)))
        if first:
            result = QueueResult(
                QueueOutcomeKind.CALLBACK,
                caller.queue,
                wait_s=s.now - caller.enqueued_at,
                callback_number=cmd.number,
            )
            out.append(CallerLeft(caller.call_id, caller.node, result))
        s.mark_caller(caller.call_id)

    def max_wait(self, caller: Caller, out: list[AcdEvent]) -> None:
        """The caller waited its queue's max wait: apply the queue's overflow target."""
        s = self.state
        queue = s.queues[caller.queue]
        target: OverflowTarget | None = queue.config.overflow
        if target is None or caller.callback_number is not None or caller.max_wait_handled:
            return
        max_wait = queue.config.max_wait_s
        if max_wait is None or s.now < caller.queue_entered_at + max_wait:
            return  # a deadline left from the queue the caller overflowed from
        if caller.offers:  # an agent is ringing: decide when the ring ends
            s.push(min(o.deadline for o in caller.offers.values()), DeadlineKind.MAX_WAIT, caller.call_id)
            return
        queue.overflowed += 1
        if target.kind is OverflowKind.QUEUE and target.target is not None:
            queue.remove(caller)
            caller.queue = target.target
            caller.queue_entered_at = s.now
            s.queues[caller.queue].add(caller)
            self._arm(caller)
            out.append(CallerMoved(caller.call_id, queue.config.queue_id, caller.queue))
            s.mark_caller(caller.call_id)
        elif target.kind is OverflowKind.SITE and target.target is not None:
            caller.max_wait_handled = True
            caller.extra_sites = (*caller.extra_sites, target.target)
            out.append(SitesWidened(caller.call_id, caller.queue, target.target))
            s.mark_caller(caller.call_id)
        elif target.kind is OverflowKind.CALLBACK:
            caller.max_wait_handled = True
            out.append(CallbackSuggested(caller.call_id, caller.queue))
        else:
            s.leave(caller, QueueOutcomeKind.OVERFLOWED, out, target=str(target))
