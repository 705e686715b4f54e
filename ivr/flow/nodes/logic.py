"""Nodes that decide without the caller: play, set, branch, schedule, subflow, return, hangup."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.flow.errors import FlowRuntimeError
from ivr.flow.events import StepKind
from ivr.flow.expr import truthy
from ivr.flow.model import (
    BranchNode,
    HangupNode,
    Hours,
    PlayNode,
    ReturnNode,
    ScheduleNode,
    SetNode,
    SubflowNode,
    Weekday,
)
from ivr.flow.runtime import CallRuntime

MAX_SUBFLOW_DEPTH = 16
_WEEKDAYS = list(Weekday)


async def run_play(node: PlayNode, rt: CallRuntime) -> str | None:
    await rt.play([node.prompt], barge_in=node.barge_in)
    return node.next


async def run_set(node: SetNode, rt: CallRuntime) -> str | None:
    for name, expression in node.values.items():
        rt.set_var(name, expression.evaluate(rt.variables))
    return node.next


async def run_branch(node: BranchNode, rt: CallRuntime) -> str | None:
    for case in node.cases:
        if truthy(case.when.evaluate(rt.variables)):
            return case.goto
    return node.otherwise


def _open_at(hours: Hours, local: dt.datetime) -> bool:
    day = _WEEKDAYS[local.weekday()]
    yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
    t = local.time()
    if hours.start < hours.end:
        return day in hours.days and hours.start <= t < hours.end
    # Runs past midnight: the evening part belongs to today, the morning part to yesterday's shift.
    return (day in hours.days and t >= hours.start) or (yesterday in hours.days and t < hours.end)


def schedule_state(node: ScheduleNode, now: dt.datetime) -> str:
    """`holiday`, `open` or `closed` at wall time `now` (an aware datetime)."""
    local = now.astimezone(ZoneInfo(node.timezone))
    if local.date() in node.holidays:
        return "holiday"
    return "open" if any(_open_at(h, local) for h in node.hours) else "closed"


async def run_schedule(node: ScheduleNode, rt: CallRuntime) -> str | None:
    now = rt.clock.wall()
    state = schedule_state(node, now)
    rt.emit(
        StepKind.SCHEDULE, {"state": state, "local_time": now.astimezone(ZoneInfo(node.timezone)).isoformat()}
    )
    if state == "holiday":
        return node.holiday or node.closed
    return node.open if state == "open" else node.closed


async def run_subflow(node: SubflowNode, rt: CallRuntime) -> str | None:
    if len(rt.stack) >= MAX_SUBFLOW_DEPTH:
        raise FlowRuntimeError(f"node '{node.id}': subflows nested deeper than {MAX_SUBFLOW_DEPTH}")
    rt.stack.append(node.next)
    return node.start


async def run_return(node: ReturnNode, rt: CallRuntime) -> str | None:
    if not rt.stack:
        raise FlowRuntimeError(f"node '{node.id}' returned with no subflow to return to")
    return rt.stack.pop()


async def run_hangup(node: HangupNode, rt: CallRuntime) -> str | None:
    if node.prompt is not None:
        await rt.play([node.prompt])
    rt.finish_without_human()
    rt.emit(StepKind.HANGUP)
    return None  # the interpreter hangs up once the record is written
