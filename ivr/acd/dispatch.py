"""Sites helping other sites' queues: the night rule and operators' emergency dispatches.

At night (e.g. 22:00-08:00 local) the central sites serve every queue; in a typhoon or flood an
operator dispatches agents of other regions to the struck region's queues until a given time.
Every change is kept, in order, as a `DispatchChanged` event (`DispatchBook.log`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ivr.acd.config import AcdConfig, NightRule
from ivr.acd.errors import AcdError, UnknownQueue, UnknownSite
from ivr.dispatching import Dispatch, DispatchChange, DispatchChanged, DispatchRequest

NIGHT_ID = "night"


def _minute_of_day(rule: NightRule, wall: datetime) -> float:
    local = wall.astimezone(timezone(timedelta(hours=rule.utc_offset_h)))
    return local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60


def night_active(rule: NightRule, wall: datetime) -> bool:
    minute = _minute_of_day(rule, wall)
    if rule.start_min <= rule.end_min:
        return rule.start_min <= minute < rule.end_min
    return minute >= rule.start_min or minute < rule.end_min


def seconds_to_night_change(rule: NightRule, wall: datetime) -> float:
    """Seconds from `wall` until the night rule next switches on or off (always > 0)."""
    minute = _minute_of_day(rule, wall)
    waits = [((b - minute) % (24 * 60)) or 24 * 60 for b in (rule.start_min, rule.end_min)]
    return min(waits) * 60


class DispatchBook:
    """Active dispatches, the night rule's state, and the log of every change."""

    __slots__ = ("_config", "active", "log", "night_on", "_count", "_borrowed")

    def __init__(self, config: AcdConfig) -> None:
        self._config = config
        self.active: dict[str, Dispatch] = {}
        self.log: list[DispatchChanged] = []
        self.night_on = False
        self._count = 0
        self._borrowed: dict[str, frozenset[str]] = {}

    @property
    def count(self) -> int:
        """Dispatches started so far (the next one's id is d<count + 1>)."""
        return self._count

    def load(
        self, active: dict[str, Dispatch], log: list[DispatchChanged], *, night_on: bool, count: int
    ) -> None:
        """Take the state a snapshot saved (see `ivr.acd.snapshot`)."""
        self.active, self.log, self.night_on, self._count = active, log, night_on, count
        self._recompute()

    def borrowed_sites(self, queue_id: str) -> frozenset[str]:
        """Sites whose agents may serve `queue_id` now besides its home sites."""
        return self._borrowed.get(queue_id, frozenset())

    def _night_record(self, wall: datetime) -> Dispatch:
        rule = self._config.night
        assert rule is not None
        return Dispatch(NIGHT_ID, "*", rule.queues, rule.helper_sites, wall, None, "night hours")

    def _recompute(self) -> None:
        borrowed: dict[str, set[str]] = {}
        records = list(self.active.values())
        if self.night_on and self._config.night is not None:
            rule = self._config.night
            records.append(Dispatch(NIGHT_ID, "*", rule.queues, rule.helper_sites, datetime.min, None))
        for record in records:
            for queue in record.queues:
                borrowed.setdefault(queue, set()).update(record.helper_sites)
        self._borrowed = {q: frozenset(s) for q, s in borrowed.items()}

    def _record(self, change: DispatchChange, record: Dispatch, wall: datetime) -> DispatchChanged:
        event = DispatchChanged(change, record, wall)
        self.log.append(event)
        self._recompute()
        return event

    def validate(self, cmd: DispatchRequest) -> tuple[str, ...]:
        """The queues the dispatch covers; raises naming the unknown region, queue or site."""
        config = self._config
        regions = {s.region for s in config.sites.values()} | {q.region for q in config.queues.values()}
        if cmd.region not in regions:
            raise AcdError(f"dispatch names unknown region {cmd.region!r}; known: {', '.join(sorted(regions))}")
        for queue in cmd.queues:
            if queue not in config.queues:
                raise UnknownQueue(f"dispatch names unknown queue {queue!r}")
        for site in cmd.helper_sites:
            if site not in config.sites:
                raise UnknownSite(f"dispatch names unknown helper site {site!r}")
        if not cmd.helper_sites:
            raise AcdError(f"dispatch to region {cmd.region!r} names no helper site")
        queues = cmd.queues or tuple(q.queue_id for q in config.queues.values() if q.region == cmd.region)
        if not queues:
            raise AcdError(f"region {cmd.region!r} has no queue to dispatch agents to")
        return queues

    def start(self, cmd: DispatchRequest, wall: datetime) -> DispatchChanged:
        queues = self.validate(cmd)
        self._count += 1
        record = Dispatch(
            dispatch_id=f"d{self._count}",
            region=cmd.region,
            queues=queues,
            helper_sites=cmd.helper_sites,
            since=wall,
            until=cmd.until,
            reason=cmd.reason,
            requested_by=cmd.requested_by,
        )
        self.active[record.dispatch_id] = record
        return self._record(DispatchChange.STARTED, record, wall)

    def end(self, dispatch_id: str, wall: datetime, change: DispatchChange = DispatchChange.ENDED) -> DispatchChanged:
        record = self.active.pop(dispatch_id, None)
        if record is None:
            raise AcdError(f"no active dispatch {dispatch_id!r}")
        return self._record(change, record, wall)

    def advance(self, wall: datetime) -> list[DispatchChanged]:
        """Expire dispatches past `until` and switch the night rule; returns the changes."""
        changes = [
            self.end(d, wall, DispatchChange.EXPIRED)
            for d, r in list(self.active.items())
            if r.until is not None and r.until <= wall
        ]
        rule = self._config.night
        if rule is not None and night_active(rule, wall) != self.night_on:
            self.night_on = not self.night_on
            change = DispatchChange.NIGHT_STARTED if self.night_on else DispatchChange.NIGHT_ENDED
            changes.append(self._record(change, self._night_record(wall), wall))
        return changes

    def seconds_to_next_change(self, wall: datetime) -> float | None:
        waits = [(r.until - wall).total_seconds() for r in self.active.values() if r.until is not None]
        if self._config.night is not None:
            waits.append(seconds_to_night_change(self._config.night, wall))
        return max(min(waits), 0.0) if waits else None
