"""A queue's waiting callers, in the order they must be served: priority first, then arrival.

A caller keeps its place (its arrival number) while agents are rung for it, when a ring fails, when
it overflows to another queue and when it leaves a callback number; only leaving ends it.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ivr.acd.config import QueueConfig
from ivr.acd.events import Offer
from ivr.call import QueueRequest

RECENT_CALLS = 20
"""Handle times remembered per queue for the estimated wait."""

OrderKey = tuple[int, int, str]


@dataclass(slots=True)
class Caller:
    """One waiting caller (or a callback keeping a caller's place)."""

    call_id: str
    queue: str
    """The queue the caller is in now (`request.queue` until an overflow moves it)."""
    node: str
    request: QueueRequest
    """What the flow asked for, unchanged: priority, skills, dialect, context for the agent."""
    seq: int
    """Arrival number across the whole ACD: the tie-break after priority."""
    enqueued_at: float
    queue_entered_at: float
    """When the caller entered its current queue (max wait counts from here)."""
    callback_number: str | None = None
    extra_sites: tuple[str, ...] = ()
    """Sites added by a `site:` overflow."""
    offers: dict[str, Offer] = field(default_factory=dict)
    """Live offers (ringing agents) by offer id."""
    missed_until: dict[str, float] = field(default_factory=dict)
    """Agents that missed this caller, and until when they are skipped for it."""
    max_wait_handled: bool = False

    @property
    def priority(self) -> int:
        return self.request.priority

    @property
    def skills(self) -> Mapping[str, int]:
        return self.request.skills

    @property
    def dialect(self) -> str:
        return self.request.dialect

    @property
    def key(self) -> OrderKey:
        return (-self.priority, self.seq, self.call_id)


@dataclass(slots=True)
class QueueState:
    config: QueueConfig
    order: list[OrderKey] = field(default_factory=list)
    callers: dict[str, Caller] = field(default_factory=dict)
    recent_handle_s: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    last_agent: str | None = None
    """Round robin memory: the agent who took this queue's last call."""
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0

    def __len__(self) -> int:
        return len(self.order)

    def add(self, caller: Caller) -> None:
        bisect.insort(self.order, caller.key)
        self.callers[caller.call_id] = caller

    def remove(self, caller: Caller) -> None:
        index = bisect.bisect_left(self.order, caller.key)
        assert self.order[index] == caller.key, f"caller {caller.call_id} not in queue {self.config.queue_id}"
        del self.order[index]
        del self.callers[caller.call_id]

    def position(self, caller: Caller) -> int:
        """1-based place: callers ahead of this one, plus one."""
        return bisect.bisect_left(self.order, caller.key) + 1

    def in_order(self) -> Iterator[Caller]:
        for key in self.order:
            yield self.callers[key[2]]

    def avg_handle_s(self) -> float:
        if not self.recent_handle_s:
            return self.config.handle_time_s
        return sum(self.recent_handle_s) / len(self.recent_handle_s)
