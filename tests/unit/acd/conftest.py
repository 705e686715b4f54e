from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ivr.acd.commands import AgentLogin, Command, Enqueue, Tick
from ivr.acd.config import AcdConfig, parse_config
from ivr.acd.distributor import Distributor
from ivr.acd.events import AcdEvent, Offer, OfferMade
from ivr.call import QueueRequest

# 10:00 in Beijing (UTC+8): daytime, the night rule is off.
DAY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

SITES = """
sites:
  - {id: north, region: north, central: true}
  - {id: south, region: south}
"""


def agents_yaml(*agents: str) -> str:
    return SITES + "agents:\n" + "".join(agents)


def agent(
    agent_id: str,
    site: str = "north",
    skills: str = "{general: 1}",
    dialects: str = "[cmn]",
    max_calls: int = 1,
    wrap_up_s: float = 0,
) -> str:
    return (
        f"  - {{id: {agent_id}, sip: {{username: {agent_id}, password: pw}}, site: {site},"
        f" skills: {skills}, dialects: {dialects}, max_calls: {max_calls}, wrap_up_s: {wrap_up_s}}}\n"
    )


def config(agents_text: str, queues_text: str) -> AcdConfig:
    return parse_config(agents_text, queues_text)


class Harness:
    """A Distributor with a clock of its own: `h.do(cmd)` applies at `h.now`."""

    def __init__(self, cfg: AcdConfig, *, lease_s: float | None = None, wall: datetime = DAY) -> None:
        self.core = Distributor(cfg, lease_s=lease_s)
        self.now = 0.0
        self.wall0 = wall
        self.events: list[AcdEvent] = []

    def do(self, command: Command, node: str = "n1") -> list[AcdEvent]:
        wall = self.wall0 + timedelta(seconds=self.now)
        out = self.core.apply(command, node=node, now=self.now, wall=wall)
        self.events += out
        return out

    def at(self, now: float, node: str = "n1") -> list[AcdEvent]:
        self.now = now
        return self.do(Tick(), node)

    def login(self, *agent_ids: str) -> None:
        for a in agent_ids:
            self.do(AgentLogin(a, f"sip:{a}@10.0.0.1"))

    def enqueue(self, call_id: str, queue: str = "general", **kw: object) -> list[AcdEvent]:
        return self.do(Enqueue(call_id, QueueRequest(queue, **kw)))  # type: ignore[arg-type]


def offers(events: Sequence[AcdEvent]) -> list[Offer]:
    return [e.offer for e in events if isinstance(e, OfferMade)]


@pytest.fixture
def simple() -> AcdConfig:
    return config(
        agents_yaml(agent("a1"), agent("a2"), agent("a3")),
        "queues:\n  - {id: general, strategy: longest-idle, ring_timeout_s: 20, retry_after_s: 5}\n",
    )
