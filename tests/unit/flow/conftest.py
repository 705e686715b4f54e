from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import Flow, HttpReply, load_flow

ROOT = Path(__file__).resolve().parents[3]
HOTLINE = ROOT / "flows" / "hotline.yaml"


class StubHttp:
    """The data-dip seam without sockets: URL path suffix → reply, exception, or a callable."""

    def __init__(
        self, routes: Mapping[str, HttpReply | BaseException | Callable[[], HttpReply]] | None = None
    ):
        self.routes = dict(routes or {})
        self.calls: list[str] = []

    async def request(self, method: str, url: str, *, json_body: Any, timeout_s: float) -> HttpReply:
        self.calls.append(url)
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
        for suffix, answer in self.routes.items():
            if ("/" + path).endswith(suffix):
                if isinstance(answer, BaseException):
                    raise answer
                return answer() if callable(answer) else answer
        return HttpReply(404, {"error": "not found"})


CUSTOMER = HttpReply(200, {"name": "张伟", "elderly": False, "dialect": "cmn"})
ELDERLY = HttpReply(200, {"name": "李秀英", "elderly": True, "dialect": "yue"})
POLICY = HttpReply(
    200, {"product": "国寿福终身寿险", "status": "有效", "amount": 300000, "next_due": "2026-03-15"}
)


@pytest.fixture(scope="session")
def hotline() -> Flow:
    return load_flow(HOTLINE)
