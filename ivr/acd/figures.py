"""Each agent's figures for the day: calls taken, talk time, pauses and time paused.

Pure: fed the ACD's `AgentChanged` events in log order (every node applies the same log, so every node
counts the same), read with the time. A day is the calendar date of the events' wall time (UTC, the
engine's clock); the first event of a new date starts the agent's figures over, carrying on a talk or
pause that spans midnight from midnight's side. Only this node's memory holds them: a restarted node
counts from its restart.

A call transferred to an agent directly (not offered by a queue) holds that agent with the pause reason
`TRANSFER_HOLD_REASON`: it counts as a call and talk time, not as a pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ivr.acd.events import AgentChanged

TRANSFER_HOLD_REASON = "transferred-call"
"""Pause reason holding an agent who took a transferred call (no queue offers meanwhile)."""
_PAUSED = "paused"
_IN_CALL = "in_call"


@dataclass(slots=True)
class AgentDay:
    """One agent's figures on `day`; times in seconds of ACD time."""

    day: date
    calls: int = 0
    talk_s: float = 0.0
    pauses: int = 0
    paused_s: float = 0.0
    talking_since: float | None = None
    paused_since: float | None = None

    def to_json(self, now: float) -> dict[str, object]:
        """The figures as of `now` (a talk or pause still going counts up to `now`)."""
        talk = self.talk_s + (now - self.talking_since if self.talking_since is not None else 0.0)
        paused = self.paused_s + (now - self.paused_since if self.paused_since is not None else 0.0)
        return {"day": self.day.isoformat(), "calls": self.calls, "talk_s": round(max(talk, 0.0), 1),
                "pauses": self.pauses, "paused_s": round(max(paused, 0.0), 1)}


class AgentFigures:
    """Today's figures of every agent seen in the ACD's events."""

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: dict[str, AgentDay] = {}

    def apply(self, event: AgentChanged) -> None:
        day = self._day(event.agent_id, event.wall.date(), event.at)
        held = event.status == _PAUSED and event.pause_reason == TRANSFER_HOLD_REASON
        talking = event.state == _IN_CALL or held
        paused = event.status == _PAUSED and not held
        if talking and day.talking_since is None:
            day.talking_since = event.at
            day.calls += 1 if (event.event == "answer" or held) else 0
        elif talking and event.event == "answer":
            day.calls += 1  # a second line answered while on a call
        elif not talking and day.talking_since is not None:
            day.talk_s += event.at - day.talking_since
            day.talking_since = None
        if paused and day.paused_since is None:
            day.paused_since = event.at
            day.pauses += 1
        elif not paused and day.paused_since is not None:
            day.paused_s += event.at - day.paused_since
            day.paused_since = None

    def today(self, agent_id: str, wall: datetime, now: float) -> dict[str, object]:
        """The agent's figures for `wall`'s date as of `now` (zeros for an agent with none that day)."""
        day = self._days.get(agent_id)
        if day is None or day.day != wall.date():
            day = AgentDay(wall.date())
        return day.to_json(now)

    def _day(self, agent_id: str, today: date, at: float) -> AgentDay:
        day = self._days.get(agent_id)
        if day is None:
            day = self._days[agent_id] = AgentDay(today)
        elif day.day != today:  # midnight passed: start over, carrying what is still going on
            fresh = AgentDay(today, talking_since=None if day.talking_since is None else at,
                             paused_since=None if day.paused_since is None else at)
            day = self._days[agent_id] = fresh
        return day


__all__ = ["TRANSFER_HOLD_REASON", "AgentDay", "AgentFigures"]
