"""Retention: how long caller data is kept, and the purge that enforces it (issue 15, PII).

A purge deletes finished calls started before a cut-off with their journey events and survey
scores, and caller dialect memories not touched since (the caller has not called back in that time).
The dispatch log keeps no caller data and is kept. Calls still in progress are never purged. The
engine runs `run_retention` once at start and then daily; `ivr purge --older-than 30d` runs one now.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from ivr.clock import Clock
from ivr.errors import ConfigError

log = structlog.get_logger(__name__)

PURGE_EVERY_S = 24 * 3600.0
_SPAN = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
_SPAN_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(slots=True, frozen=True)
class PurgeCounts:
    """Rows deleted by one purge, per kind."""

    calls: int = 0
    journey_events: int = 0
    surveys: int = 0
    caller_dialects: int = 0
    renders: int = 0
    """Caller-specific TTS renders removed from the prompt cache."""
    messages: int = 0
    """Voice messages (rows and WAV files) deleted."""
    recordings: int = 0
    """Call recordings (WAV files) deleted."""

    def __add__(self, other: PurgeCounts) -> PurgeCounts:
        return PurgeCounts(
            self.calls + other.calls,
            self.journey_events + other.journey_events,
            self.surveys + other.surveys,
            self.caller_dialects + other.caller_dialects,
            self.renders + other.renders,
            self.messages + other.messages,
            self.recordings + other.recordings,
        )


OLD_CALLS = "FROM calls WHERE started_at < ? AND in_progress = FALSE"
"""Both backends compare `started_at` directly (SQLite's fixed-width ISO text sorts as time), on its index."""


def purge_statements(dialect_before: str) -> list[tuple[str, str]]:
    """(kind, SQL with one `?` for the cut-off) in the order they must run: children before calls.
    `dialect_before` is the backend's "caller_dialects.updated_at is older than ?" test."""
    return [
        ("journey_events", f"DELETE FROM journey_events WHERE call_id IN (SELECT call_id {OLD_CALLS})"),
        ("surveys", f"DELETE FROM surveys WHERE call_id IN (SELECT call_id {OLD_CALLS})"),
        ("calls", f"DELETE {OLD_CALLS}"),
        ("caller_dialects", f"DELETE FROM caller_dialects WHERE {dialect_before}"),
    ]


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `2w` → a timedelta; a bare number is days."""
    if text.strip().isdigit():
        text = text.strip() + "d"
    match = _SPAN.match(text)
    if match is None:
        raise ConfigError(f"bad age {text!r}: expected a number of days, hours or weeks (30d, 12h, 2w)")
    return int(match.group(1)) * _SPAN_UNITS[match.group(2)]


class Purgeable(Protocol):
    def purge(self, before: datetime) -> PurgeCounts:
        """Delete caller data older than `before` (blocking); what was deleted."""
        ...


RenderPurger = Callable[[datetime], int]
"""Removes caller-specific TTS renders made before a time; returns how many (FLOW's prompt cache)."""


def purge_all(
    store: Purgeable,
    before: datetime,
    render_purgers: Sequence[RenderPurger] = (),
    message_purgers: Sequence[RenderPurger] = (),
    recording_purgers: Sequence[RenderPurger] = (),
) -> PurgeCounts:
    """One purge of every place caller data is kept (blocking). `message_purgers` delete voice messages
    (`ivr.store.messages.MessageStore.purge`)."""
    counts = store.purge(before)
    for purge_renders in render_purgers:
        counts = counts + PurgeCounts(renders=purge_renders(before))
    for purge_messages in message_purgers:
        counts = counts + PurgeCounts(messages=purge_messages(before))
    for purge_recordings in recording_purgers:  # call recordings (ivr.recording.retention)
        counts = counts + PurgeCounts(recordings=purge_recordings(before))
    return counts


async def run_retention(
    store: Purgeable,
    retention_days: int,
    clock: Clock,
    *,
    render_purgers: Sequence[RenderPurger] = (),
    message_purgers: Sequence[RenderPurger] = (),
    recording_purgers: Sequence[RenderPurger] = (),
    every_s: float = PURGE_EVERY_S,
) -> None:
    """Purge now, then every `every_s`, what is older than `retention_days` (0: never). Runs until
    cancelled; a failed purge is logged and retried at the next turn, never stops the engine."""
    if retention_days <= 0:
        return
    while True:
        before = clock.wall() - timedelta(days=retention_days)
        try:
            counts = await asyncio.to_thread(purge_all, store, before, render_purgers, message_purgers,
                                           recording_purgers)
            log.info("retention_purged", before=before.isoformat(), calls=counts.calls,
                     caller_dialects=counts.caller_dialects, renders=counts.renders, messages=counts.messages,
                     recordings=counts.recordings)
        except Exception:
            log.exception("retention_purge_failed")
        await clock.sleep(every_s)
