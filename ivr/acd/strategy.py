"""Queue strategies: which of the free agents eligible for a caller are rung, in what order.

Eligibility (site, queue skill, the caller's skills and dialect, widening) is decided by the
distributor; a strategy only orders the eligible free agents. `RING_ALL` rings them all; every
other strategy rings the first. Ties always break on agent id, so every node of a cluster,
applying the same log, makes the same choice (`RANDOM` draws from the distributor's seeded RNG).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.acd.agent import Agent


class Strategy(enum.Enum):
    RING_ALL = "ring-all"
    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    """Round robin with memory: start after the agent who took the queue's last call."""
    FEWEST_CALLS = "fewest-calls"
    RANDOM = "random"
    SKILLS_BASED = "skills-based"
    """Best skill level (and native dialect) first, longest idle among equals."""


def skill_score(agent: Agent, skills: Mapping[str, int], dialect: str) -> int:
    """Sum of the agent's levels in the wanted skills, plus one for speaking the caller's dialect."""
    levels = agent.config.skills
    return sum(levels.get(name, 0) for name in skills) + (1 if dialect in agent.config.dialects else 0)


def rank(
    strategy: Strategy,
    candidates: Sequence[Agent],
    *,
    skills: Mapping[str, int],
    dialect: str,
    member_order: Sequence[str],
    last_agent: str | None,
    rng: random.Random,
) -> list[Agent]:
    """Agents to ring for one caller: all of them for RING_ALL, else a list of one."""
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda a: a.agent_id)
    if strategy is Strategy.RING_ALL:
        return ordered
    if strategy is Strategy.LONGEST_IDLE:
        return [min(ordered, key=lambda a: a.idle_since)]
    if strategy is Strategy.FEWEST_CALLS:
        return [min(ordered, key=lambda a: (a.calls_answered, a.idle_since))]
    if strategy is Strategy.RANDOM:
        return [ordered[rng.randrange(len(ordered))]]
    if strategy is Strategy.SKILLS_BASED:
        return [min(ordered, key=lambda a: (-skill_score(a, skills, dialect), a.idle_since))]
    # ROUND_ROBIN: the first candidate after `last_agent` in config order, wrapping around.
    index = {agent_id: i for i, agent_id in enumerate(member_order)}
    size = max(len(member_order), 1)
    start = index.get(last_agent, -1) if last_agent is not None else -1
    return [min(ordered, key=lambda a: (index.get(a.agent_id, size) - start - 1) % size)]
