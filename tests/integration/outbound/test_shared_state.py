"""Campaign state in a real PostgreSQL, shared by engine nodes: one leads and dials, a claim is never
made twice for the same attempt, a leader that goes frees the lead at once and the next one closes
what it left open and goes on; two live engines on one database finish a campaign between them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import pathlib
from collections.abc import Iterator

import pytest

from ivr.cli import main
from ivr.outbound.model import Result
from ivr.outbound.pgstate import PostgresCampaignStore
from ivr.outbound.scheduler import INTERRUPTED, Scheduler
from ivr.outbound.state import Status
from ivr.outbound.targets import Target
from ivr.testing import peers
from ivr.testing.sippeer import read_message_log
from tests.integration.cluster.cluster import new_database, running_postgres
from tests.integration.outbound.conftest import campaign_yaml, needs_sipp, outbound_engine, sipp_callee
from tests.unit.outbound.test_scheduler import WED_10_SH, campaign

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(peers.POSTGRESQL.missing, reason=peers.POSTGRESQL.reason)]

_numbers = itertools.count()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as dsn:
        yield dsn


@pytest.fixture
def database(postgres: str) -> str:
    return new_database(postgres, f"ivr_outbound_{os.getpid()}_{next(_numbers)}")


def test_one_node_leads_claims_are_made_once_and_the_next_leader_closes_what_the_last_left(
    database: str, capsys: pytest.CaptureFixture[str],
) -> None:
    a, b, c = (PostgresCampaignStore(database) for _ in range(3))
    try:
        assert a.shared and a.lead() and not b.lead() and a.lead()
        node_a, node_b, stale = Scheduler(a), Scheduler(b), Scheduler(c)
        for scheduler in (node_a, node_b, stale):
            scheduler.add_campaign(campaign())
        # Targets come through node B's API; the leader reads them back.
        node_b.add_targets("c1", [Target(f"t{i}", f"1380000000{i}") for i in range(3)], WED_10_SH)
        stale.refresh()
        node_a.refresh()
        first = node_a.next_dial(WED_10_SH, 0.0, "call-a1")
        assert first is not None and (first.target.target_id, first.attempt) == ("t0", 1)
        # A node whose memory is older than the claim (a leader that lost its lead without noticing)
        # cannot claim the same attempt: it skips to the next target.
        taken = stale.next_dial(WED_10_SH, 0.0, "call-stale")
        assert taken is not None and taken.target.target_id == "t1"
        stale.finished(taken, Result.BUSY, None, WED_10_SH)
        node_b.refresh(full=True)
        assert node_b.progress("c1").attempted == 2
        state_b = node_b.target("c1", "t0")
        assert state_b is not None and state_b.status is Status.DIALING
        # Node A dies with t0 dialling: its connection closes, the lead is free at once.
        a.close()
        assert b.lead()
        node_b.take_over()
        left = b.target("c1", "t0")
        assert left is not None and (left.status, left.result_code, left.attempts) == (Status.PENDING, INTERRUPTED, 1)
        again = node_b.next_dial(WED_10_SH + dt.timedelta(seconds=1), 10.0, "call-b1")
        assert again is not None and (again.target.target_id, again.attempt) == ("t0", 2)
        keys = [(r.target_id, r.attempt) for r in b.attempts("c1")]
        assert sorted(keys) == [("t0", 1), ("t0", 2), ("t1", 1)]
        capsys.readouterr()
        assert main(["campaign", "export", "c1", "--db", database]) == 0  # the shared state, by its URL
        rows = capsys.readouterr().out.splitlines()
        assert rows[0].startswith("campaign,target_id,number,status,attempts") and len(rows) == 4, rows
        assert rows[1].startswith("c1,t0,13800000000,dialing,2,"), rows
    finally:
        for store in (b, c):
            store.close()


@needs_sipp
async def test_two_engines_on_one_database_finish_a_campaign_when_the_dialling_one_stops(
    tmp_path: pathlib.Path, database: str,
) -> None:
    """Node 1 leads and dials; it is stopped with calls up (they end as interrupted); node 2 takes the
    lead and finishes: every target reached once, no (target, attempt) dialled twice, and SIPp saw
    exactly the attempts recorded."""
    numbers = [f"1380000002{i}" for i in range(6)]
    async with sipp_callee("uas_answer.xml", tmp_path, calls=20, timeout_s=40) as (port, _task):
        text = campaign_yaml("shared", port).replace("calls_per_s: 5", "calls_per_s: 2")
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                outbound_engine(tmp_path / "n1", {"shared": text}, db=database, node_id="n1"))
            async with asyncio.timeout(10):
                while not first.outbound.leading:  # noqa: ASYNC110 - its run loop takes the lead
                    await asyncio.sleep(0.05)
            async with outbound_engine(tmp_path / "n2", {"shared": text}, db=database, node_id="n2") as second:
                assert not second.outbound.leading
                # Targets come through the node that does not dial (its API), the leader dials them.
                second.outbound.scheduler.add_targets("shared", [Target(f"t{n}", n) for n in numbers],
                                                      dt.datetime.now(dt.UTC))
                await first.wait_ended(2)
                await stack.aclose()  # node 1 stops with calls up: they end as interrupted
                async with asyncio.timeout(30):
                    while any(s.status is not Status.DONE  # noqa: ASYNC110 - polling the shared state
                              for s in second.outbound.scheduler.store.targets("shared")):
                        await asyncio.sleep(0.1)
                assert second.outbound.leading
                states = {s.target.number: s for s in second.outbound.scheduler.store.targets("shared")}
                attempts = second.outbound.scheduler.store.attempts("shared")
    log = await asyncio.to_thread(lambda: read_message_log(next(tmp_path.glob("*uas_answer-messages.log"))))
    invites = [m for m in log if m.direction == "received" and m.text.startswith("INVITE")]
    keys = [(a.target_id, a.attempt) for a in attempts]
    assert len(keys) == len(set(keys)), keys
    assert len(invites) == len(attempts)
    assert {n for n, s in states.items() if s.result_code == "reached"} == set(numbers)
    assert len(first.outbound.ended) >= 2 and second.outbound.ended
