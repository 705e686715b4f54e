"""Summary figures over a time window: the numbers ops read every hour.

Definitions (every figure counts calls *started* in `[since, until)` in one direction: the hotline's
inbound calls unless asked otherwise; outbound attempts are a campaign's, reported by the campaign):

- `calls`: every call, in progress or not.
- `finished`: calls that ended normally (not in progress, not `interrupted` by an engine stop).
- `containment`: self-served / finished: the share served without a human.
- `offered`: calls that joined a human queue (`queue` set). `answered`: offered calls an agent took
  (`agent_id` set). `abandoned`: offered calls with outcome `abandoned`.
- `answer_rate` = answered / offered; `abandon_rate` = abandoned / offered.
- `asa_s` (average speed of answer) = mean `wait_s` of answered calls.
- `service_level` = answered within `service_level_s` (20 s) / offered.
- `nps` = % promoters (9-10) minus % detractors (0-6) of calls with a survey score, -100..100.
- `breakpoints`: journey steps marked as breakpoints, by node: steps, distinct calls, and how many of
  those calls an agent then took (`rescued`).
- funnel: calls → intent captured → self-service broke (a breakpoint) → continued by an agent.

A ratio with a zero denominator is None (shown as "–"), never 0.

The SQL here is portable: the same text runs on SQLite and PostgreSQL (with `?` placeholders, which
the PostgreSQL backend turns into `%s`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ivr.store.errors import BadQuery

SERVICE_LEVEL_S = 20.0

SUMMARY_SQL = """
SELECT COUNT(*),
  COALESCE(SUM(CASE WHEN NOT in_progress AND (outcome IS NULL OR outcome <> 'interrupted')
                    THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN outcome = 'self-served' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN in_progress THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN outcome = 'interrupted' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN queue <> '' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN queue <> '' AND agent_id <> '' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN queue <> '' AND outcome = 'abandoned' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN queue <> '' AND agent_id <> '' AND COALESCE(wait_s, 0) <= ? THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN queue <> '' AND agent_id <> '' THEN COALESCE(wait_s, 0) ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN survey_score IS NOT NULL THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN survey_score >= 9 THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN survey_score <= 6 THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN intent <> '' THEN 1 ELSE 0 END), 0),
  COALESCE(SUM({broken}), 0),
  COALESCE(SUM(CASE WHEN agent_id <> '' THEN {broken} ELSE 0 END), 0)
FROM calls WHERE direction = ? AND started_at >= ? AND started_at < ?
""".format(
    # A finished call's breakpoint_node is set from its first breakpoint step when it ends, so only
    # calls still in progress need the (costlier) look at their journey.
    broken="CASE WHEN breakpoint_node <> '' THEN 1 WHEN in_progress AND EXISTS "
    "(SELECT 1 FROM journey_events j WHERE j.call_id = calls.call_id AND j.breakpoint = TRUE) "
    "THEN 1 ELSE 0 END"
)

MIX_SQL = """
SELECT intent, dialect, COUNT(*) FROM calls
WHERE direction = ? AND started_at >= ? AND started_at < ?
GROUP BY intent, dialect
"""
"""Calls by (intent, dialect) in one pass; `mix_counts` folds it into the two mixes."""

BREAKPOINTS_SQL = """
SELECT e.node, COUNT(*), COUNT(DISTINCT e.call_id),
  COUNT(DISTINCT CASE WHEN c.agent_id <> '' THEN e.call_id END)
FROM journey_events e JOIN calls c ON c.call_id = e.call_id
WHERE e.breakpoint = TRUE AND c.direction = ? AND c.started_at >= ? AND c.started_at < ?
GROUP BY e.node ORDER BY COUNT(*) DESC, e.node LIMIT ?
"""


@dataclass(slots=True, frozen=True)
class BreakpointCount:
    node: str
    steps: int
    """Breakpoint steps at this node."""
    calls: int
    """Distinct calls that broke here."""
    rescued: int
    """Of those calls, how many an agent then took."""


@dataclass(slots=True, frozen=True)
class Summary:
    since: datetime
    until: datetime
    calls: int
    finished: int
    self_served: int
    in_progress: int
    interrupted: int
    offered: int
    answered: int
    abandoned: int
    answered_in_sl: int
    wait_total_s: float
    surveys: int
    promoters: int
    detractors: int
    intent_captured: int
    broken: int
    """Calls with a breakpoint (self-service failed somewhere)."""
    rescued: int
    """Broken calls an agent then took."""
    service_level_s: float = SERVICE_LEVEL_S
    intent_mix: dict[str, int] = field(default_factory=dict)
    dialects: dict[str, int] = field(default_factory=dict)
    breakpoints: list[BreakpointCount] = field(default_factory=list)

    @property
    def containment(self) -> float | None:
        return _ratio(self.self_served, self.finished)

    @property
    def answer_rate(self) -> float | None:
        return _ratio(self.answered, self.offered)

    @property
    def abandon_rate(self) -> float | None:
        return _ratio(self.abandoned, self.offered)

    @property
    def service_level(self) -> float | None:
        return _ratio(self.answered_in_sl, self.offered)

    @property
    def asa_s(self) -> float | None:
        return None if self.answered == 0 else self.wait_total_s / self.answered

    @property
    def nps(self) -> float | None:
        if self.surveys == 0:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.surveys

    def funnel(self) -> list[tuple[str, int]]:
        return [
            ("calls", self.calls),
            ("intent_captured", self.intent_captured),
            ("self_service_broke", self.broken),
            ("continued_by_agent", self.rescued),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "calls": self.calls,
            "finished": self.finished,
            "in_progress": self.in_progress,
            "interrupted": self.interrupted,
            "self_served": self.self_served,
            "containment": self.containment,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "answer_rate": self.answer_rate,
            "abandon_rate": self.abandon_rate,
            "asa_s": self.asa_s,
            "service_level": self.service_level,
            "service_level_s": self.service_level_s,
            "surveys": self.surveys,
            "promoters": self.promoters,
            "detractors": self.detractors,
            "nps": self.nps,
            "intent_mix": dict(self.intent_mix),
            "dialects": dict(self.dialects),
            "breakpoints": [
                {"node": b.node, "steps": b.steps, "calls": b.calls, "rescued": b.rescued}
                for b in self.breakpoints
            ],
            "funnel": [{"stage": s, "calls": n} for s, n in self.funnel()],
        }


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def mix_counts(rows: list[tuple[Any, ...]]) -> tuple[dict[str, int], dict[str, int]]:
    """(intent mix without the empty intent, dialect volumes), each biggest first then by name."""
    intents: dict[str, int] = {}
    dialects: dict[str, int] = {}
    for intent, dialect, n in rows:
        if intent:
            intents[str(intent)] = intents.get(str(intent), 0) + int(n)
        dialects[str(dialect)] = dialects.get(str(dialect), 0) + int(n)

    def ordered(counts: dict[str, int]) -> dict[str, int]:
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    return ordered(intents), ordered(dialects)


def summary_from_rows(
    since: datetime,
    until: datetime,
    totals: tuple[Any, ...],
    mix: list[tuple[Any, ...]],
    breakpoints: list[tuple[Any, ...]],
    service_level_s: float,
) -> Summary:
    """Build a `Summary` from the results of the queries above (in their column order)."""
    n = [int(v) for v in totals]
    intents, dialects = mix_counts(mix)
    return Summary(
        since=since,
        until=until,
        calls=n[0],
        finished=n[1],
        self_served=n[2],
        in_progress=n[3],
        interrupted=n[4],
        offered=n[5],
        answered=n[6],
        abandoned=n[7],
        answered_in_sl=n[8],
        wait_total_s=float(totals[9]),
        surveys=n[10],
        promoters=n[11],
        detractors=n[12],
        intent_captured=n[13],
        broken=n[14],
        rescued=n[15],
        service_level_s=service_level_s,
        intent_mix=intents,
        dialects=dialects,
        breakpoints=[BreakpointCount(str(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in breakpoints],
    )


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: datetime) -> datetime:
    """A point in time from an option: a span back from `now` (`90s`, `15m`, `2h`, `1d`, `1w`),
    `today` (midnight of `now`'s day, in `now`'s zone), `now`, or an ISO-8601 date/time."""
    value = text.strip()
    if value == "now":
        return now
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    match = _SPAN.match(value)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadQuery(
            f"bad time {text!r}: expected a span like 1d/2h/30m, 'today', 'now' or ISO-8601"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=now.tzinfo)
