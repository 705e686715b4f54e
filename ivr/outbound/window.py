"""Calling windows: may a call to this callee start now, and if not, when next?

All in the callee's local time (zone per target, else the campaign's), holidays excluded, never
outside 08:00-21:00 whatever the windows say. `now` is always passed in (an aware datetime).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ivr.flow.model import Weekday
from ivr.outbound.model import NIGHT_ENDS, NIGHT_STARTS, CallingWindow

MAX_DAYS_AHEAD = 400
_DAYS = list(Weekday)
"""Monday first, as `date.weekday()` counts."""


def _open_spans(day: dt.date, windows: Sequence[CallingWindow],
                holidays: frozenset[dt.date]) -> list[tuple[dt.time, dt.time]]:
    if day in holidays:
        return []
    spans = []
    for w in windows:
        if any(_DAYS.index(d) == day.weekday() for d in w.days):
            start, end = max(w.start, NIGHT_ENDS), min(w.end, NIGHT_STARTS)
            if start < end:
                spans.append((start, end))
    return sorted(spans)


def is_open(now: dt.datetime, zone: str, windows: Sequence[CallingWindow],
            holidays: frozenset[dt.date]) -> bool:
    local = now.astimezone(ZoneInfo(zone))
    moment = local.time().replace(tzinfo=None)
    return any(s <= moment < e for s, e in _open_spans(local.date(), windows, holidays))


def next_open(now: dt.datetime, zone: str, windows: Sequence[CallingWindow],
              holidays: frozenset[dt.date]) -> dt.datetime | None:
    """`now` if open, else the start of the next open span (aware, UTC); None if none within a year."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    if is_open(now, zone, windows, holidays):
        return now
    for ahead in range(MAX_DAYS_AHEAD):
        day = local.date() + dt.timedelta(days=ahead)
        for start, _end in _open_spans(day, windows, holidays):
            begin = dt.datetime.combine(day, start, tz)
            if begin > local:
                return begin.astimezone(dt.UTC)
    return None
