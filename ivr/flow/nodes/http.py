"""The `http` data dip: GET/POST with timeout and retries; failures fall back (a journey breakpoint)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from ivr.flow.errors import FlowError
from ivr.flow.events import StepKind
from ivr.flow.expr import Value, format_value
from ivr.flow.model import HttpNode
from ivr.flow.runtime import _PLACEHOLDER, CallRuntime, HttpReply

log = structlog.get_logger(__name__)


class HttpFailed(FlowError):
    """The back end could not be reached or answered garbage."""


class AiohttpClient:
    """`HttpClient` over one shared aiohttp session (created on first use, closed by `aclose`)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, url: str, *, json_body: Mapping[str, Any] | None, timeout_s: float
    ) -> HttpReply:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session.request(method, url, json=json_body) as response:
                    text = await response.text()
                    try:
                        body: Any = json.loads(text) if text else None
                    except ValueError:
                        body = None
                    return HttpReply(response.status, body)
        except aiohttp.ClientError as exc:
            raise HttpFailed(f"{method} {url}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def render_url(template: str, variables: Mapping[str, Value]) -> str:
    """`{name}` → the variable, percent-encoded; a template that is only `{base}...` keeps its base raw."""

    def sub(match: Any) -> str:
        value = format_value(variables.get(match.group(1)))
        return value if match.start() == 0 else quote(value, safe="")

    return _PLACEHOLDER.sub(sub, template)


def json_path(body: Any, path: str) -> Value:
    """`a.b.0.c` into parsed JSON; missing → null; objects/lists become their JSON text."""
    current = body
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isascii() and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    if isinstance(current, str | int | float | bool) or current is None:
        return current
    return json.dumps(current, ensure_ascii=False)


async def run_http(node: HttpNode, rt: CallRuntime) -> str | None:
    url = render_url(node.url, rt.variables)
    body = {k: e.evaluate(rt.variables) for k, e in node.body.items()} if node.body else None
    failure = "no attempt"
    for attempt in range(1 + node.retries):
        try:
            reply = await rt.http.request(node.method.value, url, json_body=body, timeout_s=node.timeout_s)
        except TimeoutError:
            failure = f"timeout after {node.timeout_s}s"
            log.warning("data_dip_timeout", node=node.id, url=url, attempt=attempt + 1)
            continue
        except (HttpFailed, OSError) as exc:
            failure = f"unreachable: {exc}"
            log.warning("data_dip_unreachable", node=node.id, url=url, attempt=attempt + 1, error=str(exc))
            continue
        rt.emit(StepKind.DATA_DIP, {"url": url, "status": reply.status, "attempt": attempt + 1})
        if str(reply.status) in node.on_status:
            return node.on_status[str(reply.status)]
        if 200 <= reply.status < 300:
            for name, path in node.store.items():
                rt.set_var(name, json_path(reply.body, path))
            return node.next
        failure = f"status {reply.status}"
        if reply.status < 500:
            break
    data = {"url": url, "error": failure}
    if node.breakpoint:
        rt.breakpoint(StepKind.DATA_DIP_FAILED, "data_dip_failed", data)
    else:
        rt.emit(StepKind.DATA_DIP_FAILED, data)
    rt.variables["data_dip_error"] = failure
    return node.fallback


__all__ = ["AiohttpClient", "HttpFailed", "json_path", "render_url", "run_http"]
