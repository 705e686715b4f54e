"""Emergency cross-region dispatch, as every package sees it: the one contract of acd, web and store.

Ops lend the agents of helper sites to a region's queues (a typhoon, a flood) until a given time;
at night the central sites serve the night rule's queues. The ACD applies a `DispatchRequest` and
reports each `DispatchChanged` (a `Dispatch` started, ended, expired, night hours began or ended);
the web API shows them and the store keeps a `DispatchEntry` per change or refused request.
One enum, `DispatchChange`, names what happened everywhere. Its values are the words the dispatch
log has always stored ("start", "end"...); `past_tense` is the word of the change feed ("started"...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class DispatchChange(enum.Enum):
    """What happened to a dispatch (or to the night rule, the dispatch with id "night")."""

    STARTED = "start"
    """Ops lent helper sites' agents to a region's queues."""
    ENDED = "end"
    """Ops ended a dispatch."""
    EXPIRED = "expire"
    """The ACD ended a dispatch whose `until` passed."""
    NIGHT_STARTED = "night_start"
    """Night hours began: the night rule's helper sites serve its queues."""
    NIGHT_ENDED = "night_end"

    # The dispatch log's names for the same members (aliases: same value, same member).
    START = "start"
    END = "end"
    EXPIRE = "expire"
    NIGHT_START = "night_start"
    NIGHT_END = "night_end"

    @property
    def past_tense(self) -> str:
        """The change feed's word: started, ended, expired, night_started, night_ended."""
        return self.name.lower()


@dataclass(slots=True, frozen=True)
class DispatchRequest:
    """Agents of `helper_sites` may serve `queues` of `region` (what ops ask for)."""

    region: str
    helper_sites: tuple[str, ...]
    queues: tuple[str, ...] = ()
    """Empty: every queue of `region`."""
    until: datetime | None = None
    """When the dispatch ends by itself (timezone-aware); None: until ended."""
    reason: str = ""
    requested_by: str = ""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(slots=True, frozen=True)
class Dispatch:
    """A dispatch in force (or that was): the helper sites' agents serve the region's queues."""

    dispatch_id: str
    region: str
    queues: tuple[str, ...]
    """The queues helped (the region's queues resolved when none were named)."""
    helper_sites: tuple[str, ...]
    since: datetime
    until: datetime | None = None
    reason: str = ""
    requested_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.dispatch_id,
            "region": self.region,
            "queues": list(self.queues),
            "helper_sites": list(self.helper_sites),
            "since": _iso(self.since),
            "until": _iso(self.until),
            "reason": self.reason,
            "requested_by": self.requested_by,
        }

    def log_entry(
        self, action: DispatchChange, at: datetime, *, accepted: bool = True, detail: str = ""
    ) -> DispatchEntry:
        """The dispatch log's entry for `action` done to this dispatch at `at`."""
        return DispatchEntry(
            at=at,
            action=action,
            accepted=accepted,
            dispatch_id=self.dispatch_id,
            region=self.region,
            queues=self.queues,
            helper_sites=self.helper_sites,
            until=self.until,
            reason=self.reason,
            requested_by=self.requested_by,
            detail=detail,
        )


@dataclass(slots=True, frozen=True)
class DispatchChanged:
    """One change of who serves which queues, as the ACD applied it."""

    kind: DispatchChange
    dispatch: Dispatch
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"change": self.kind.past_tense, "at": _iso(self.at), "dispatch": self.dispatch.to_json()}


@dataclass(slots=True, frozen=True)
class DispatchEntry:
    """One change (or refused attempt) of cross-region dispatch: who asked what, and what happened."""

    at: datetime
    action: DispatchChange
    accepted: bool
    """False: refused (unknown site, queue or region, past `until`, unknown id...); `detail` says why."""
    dispatch_id: str = ""
    """The ACD's id of the dispatch ("" when a start was refused)."""
    region: str = ""
    """The region whose queues get help."""
    queues: tuple[str, ...] = ()
    """The queues helped (as asked, or as the ACD resolved them once accepted)."""
    helper_sites: tuple[str, ...] = ()
    """The sites whose agents are lent."""
    until: datetime | None = None
    """When the dispatch ends by itself; None: until ended."""
    reason: str = ""
    requested_by: str = ""
    detail: str = ""


__all__ = ["Dispatch", "DispatchChange", "DispatchChanged", "DispatchEntry", "DispatchRequest"]
