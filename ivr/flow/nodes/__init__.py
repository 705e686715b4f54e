"""One executor per node type: `async def run_<type>(node, runtime) -> next node id | None`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ivr.flow.model import NodeType
from ivr.flow.nodes.collect import run_collect, run_survey
from ivr.flow.nodes.http import AiohttpClient, HttpFailed, run_http
from ivr.flow.nodes.logic import (
    run_branch,
    run_hangup,
    run_play,
    run_return,
    run_schedule,
    run_set,
    run_subflow,
)
from ivr.flow.nodes.menus import run_ask, run_confirm, run_menu
from ivr.flow.nodes.message import run_message
from ivr.flow.nodes.routing import run_queue, run_transfer
from ivr.flow.nodes.studio import run_record_prompts
from ivr.flow.runtime import CallRuntime

Executor = Callable[[Any, CallRuntime], Awaitable[str | None]]

EXECUTORS: Mapping[NodeType, Executor] = {
    NodeType.PLAY: run_play,
    NodeType.MENU: run_menu,
    NodeType.ASK: run_ask,
    NodeType.COLLECT: run_collect,
    NodeType.CONFIRM: run_confirm,
    NodeType.SET: run_set,
    NodeType.BRANCH: run_branch,
    NodeType.HTTP: run_http,
    NodeType.SCHEDULE: run_schedule,
    NodeType.QUEUE: run_queue,
    NodeType.TRANSFER: run_transfer,
    NodeType.SURVEY: run_survey,
    NodeType.SUBFLOW: run_subflow,
    NodeType.RETURN: run_return,
    NodeType.HANGUP: run_hangup,
    NodeType.MESSAGE: run_message,
    NodeType.RECORD_PROMPTS: run_record_prompts,
}

__all__ = ["EXECUTORS", "AiohttpClient", "Executor", "HttpFailed"]
