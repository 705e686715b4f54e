"""The web API's dispatcher over a real in-memory ACD: starts, ends, refusals, and the ACD's own
changes (expiry, night hours) recorded in the dispatch log. Time is a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from ivr.acd import Acd, AcdError, MemoryBackend, MemoryLog, UnknownSite, parse_config, run_clock
from ivr.call import QueueRequest
from ivr.clock import FakeClock
from ivr.engine.dispatch import AcdDispatcher
from ivr.store import DispatchAction, DispatchEntry
from ivr.web import DispatchChangeKind, DispatchRequest, UnknownDispatch

DAY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
"""10:00 in Beijing: the night rule (22:00-08:00 UTC+8) is off."""
NIGHT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
"""23:00 in Beijing: the night rule is on."""

AGENTS = """
sites:
  - {id: beijing, region: north, central: true}
  - {id: guangzhou, region: south}
agents:
  - {id: bj1, sip: {username: bj1, password: pw}, site: beijing, skills: {claims: 1}}
"""
QUEUES = """
queues:
  - {id: claims, region: south, sites: [guangzhou], skill: claims, join_empty: true}
  - {id: service, region: south, sites: [guangzhou], join_empty: true}
night: {start: "22:00", end: "08:00", utc_offset_h: 8, helper_sites: [beijing], queues: [service]}
"""


@dataclass
class FakeLog:
    entries: list[DispatchEntry] = field(default_factory=list)

    def log_dispatch(self, entry: DispatchEntry) -> None:
        self.entries.append(entry)


@dataclass
class Rig:
    acd: Acd
    dispatcher: AcdDispatcher
    log: FakeLog
    clock: FakeClock


async def _rig(wall: datetime) -> AsyncIterator[Rig]:
    clock = FakeClock(wall_start=wall)
    acd = Acd(parse_config(AGENTS, QUEUES), MemoryBackend(), clock)
    log = FakeLog()
    dispatcher = AcdDispatcher(acd, log)
    async with acd:
        yield Rig(acd, dispatcher, log, clock)


@pytest.fixture
async def day() -> AsyncIterator[Rig]:
    async for rig in _rig(DAY):
        yield rig


@pytest.fixture
async def night() -> AsyncIterator[Rig]:
    async for rig in _rig(NIGHT):
        yield rig


async def test_a_dispatch_lends_the_helper_site_until_ended(day: Rig) -> None:
    await day.acd.controls.login("bj1", "sip:bj1@127.0.0.1")
    ticket = await day.acd.enqueue(QueueRequest("claims"), "c1")
    assert ticket.result is None and day.acd.queue_stats("claims").agents_logged_in == 0
    view = await day.dispatcher.dispatch(
        DispatchRequest("south", ("beijing",), reason="typhoon", requested_by="ops")
    )
    assert (view.dispatch_id, view.queues, view.helper_sites, view.since) == (
        "d1", ("claims", "service"), ("beijing",), DAY
    )
    (offer,) = await ticket.wait_for_offer()
    assert offer.agent_id == "bj1"  # the Beijing agent now serves a Guangzhou queue
    assert [d.dispatch_id for d in day.dispatcher.active()] == ["d1"]

    ended = await day.dispatcher.end_dispatch("d1")
    assert ended == view
    assert day.dispatcher.active() == []
    assert day.acd.queue_stats("claims").borrowed_sites == ()
    assert [c.kind for c in day.dispatcher.changes()] == [DispatchChangeKind.STARTED, DispatchChangeKind.ENDED]
    assert day.log.entries == []  # requests are the web layer's to record


async def test_refusals_name_what_is_wrong(day: Rig) -> None:
    with pytest.raises(UnknownSite, match="dispatch names unknown helper site 'atlantis'"):
        await day.dispatcher.dispatch(DispatchRequest("south", ("atlantis",)))
    with pytest.raises(AcdError, match="dispatch names unknown region 'west'"):
        await day.dispatcher.dispatch(DispatchRequest("west", ("beijing",)))
    with pytest.raises(UnknownDispatch, match=r"no dispatch 'd7' \(active: none\)"):
        await day.dispatcher.end_dispatch("d7")
    await day.dispatcher.dispatch(DispatchRequest("south", ("beijing",)))
    await day.dispatcher.end_dispatch("d1")
    with pytest.raises(AcdError, match=r"dispatch 'd1' already ended at 2026-01-05T02:00:00\+00:00") as caught:
        await day.dispatcher.end_dispatch("d1")
    assert not isinstance(caught.value, UnknownDispatch)


async def test_expiry_is_recorded_by_the_dispatcher(day: Rig) -> None:
    until = DAY + timedelta(minutes=30)
    await day.dispatcher.dispatch(DispatchRequest("south", ("beijing",), ("claims",), until, "flood", "ops"))
    await run_clock(day.clock, 1800.0, day.acd)
    assert day.dispatcher.active() == []
    (entry,) = day.log.entries
    assert entry == DispatchEntry(
        at=until, action=DispatchAction.EXPIRE, accepted=True, dispatch_id="d1", region="south",
        queues=("claims",), helper_sites=("beijing",), until=until, reason="flood", requested_by="ops",
        detail="its 'until' passed",
    )  # fmt: skip
    with pytest.raises(AcdError, match="dispatch 'd1' already expired"):
        await day.dispatcher.end_dispatch("d1")


async def test_night_hours_on_at_start_up_are_recorded_and_listed(night: Rig) -> None:
    (entry,) = night.log.entries
    assert (entry.action, entry.dispatch_id, entry.queues, entry.helper_sites) == (
        DispatchAction.NIGHT_START, "night", ("service",), ("beijing",)
    )
    assert [d.dispatch_id for d in night.dispatcher.active()] == ["night"]
    with pytest.raises(AcdError, match="dispatch 'night' is the night-hours rule"):
        await night.dispatcher.end_dispatch("night")
    await run_clock(night.clock, 9 * 3600.0, night.acd)  # 08:00 in Beijing
    assert [e.action for e in night.log.entries] == [DispatchAction.NIGHT_START, DispatchAction.NIGHT_END]
    assert night.dispatcher.active() == []


async def test_a_node_joining_a_shared_log_does_not_record_its_history_again() -> None:
    clock = FakeClock(wall_start=DAY)
    shared = MemoryLog()
    config = parse_config(AGENTS, QUEUES)
    first = Acd(config, MemoryBackend("a", shared), clock)
    first_log = FakeLog()
    dispatcher = AcdDispatcher(first, first_log)
    async with first:
        until = DAY + timedelta(minutes=5)
        await dispatcher.dispatch(DispatchRequest("south", ("beijing",), until=until))
        await run_clock(clock, 600.0, first)
        later = Acd(config, MemoryBackend("b", shared), clock)
        later_log = FakeLog()
        later_dispatcher = AcdDispatcher(later, later_log)
        async with later:
            await later.settled()
            assert [c.kind for c in later_dispatcher.changes()] == [
                DispatchChangeKind.STARTED, DispatchChangeKind.EXPIRED
            ]  # the replayed history is known...
    assert later_log.entries == []  # ...but was recorded by the node that saw it happen
    assert [e.action for e in first_log.entries] == [DispatchAction.EXPIRE]


async def test_an_expiry_seen_by_two_live_nodes_is_recorded_once() -> None:
    clock = FakeClock(wall_start=DAY)
    shared, config = MemoryLog(), parse_config(AGENTS, QUEUES)
    a, b = Acd(config, MemoryBackend("a", shared), clock), Acd(config, MemoryBackend("b", shared), clock)
    logs = {"a": FakeLog(), "b": FakeLog()}
    dispatchers = {"a": AcdDispatcher(a, logs["a"]), "b": AcdDispatcher(b, logs["b"])}
    async with a, b:
        until = DAY + timedelta(minutes=5)
        await dispatchers["b"].dispatch(DispatchRequest("south", ("beijing",), until=until))
        await run_clock(clock, 600.0, a, b)
        assert [c.kind for c in dispatchers["b"].changes()][-1] is DispatchChangeKind.EXPIRED
    assert [e.action for e in logs["a"].entries] == [DispatchAction.EXPIRE]
    assert logs["b"].entries == [], "the other live node leaves the record to the first"
