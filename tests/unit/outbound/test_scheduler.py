"""The scheduler on driven clocks: windows in the callee's zone, pacing, retries, do-not-call,
priority, pause, and a restart that resumes without dialling an attempt twice or losing a target."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from ivr.outbound.loader import Campaign, load_text
from ivr.outbound.model import Result
from ivr.outbound.scheduler import DO_NOT_CALL, INTERRUPTED, MESSAGE_LEFT, NO_WINDOW, Dial, Scheduler
from ivr.outbound.state import CampaignStore, Status
from ivr.outbound.targets import Target

# Wednesday 2026-12-02 10:00 in Shanghai (02:00 UTC).
WED_10_SH = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)

BASE = """\
id: {id}
flow: revisit
trunk: "sip:{{number}}@{trunk}"
priority: {priority}
windows:
  - {{days: [mon, tue, wed, thu, fri], from: "09:00", to: "20:00"}}
holidays: [2026-12-25]
pacing: {{calls_per_s: 2, max_concurrent: 2}}
retry:
  busy: {{delay_s: 600, max_attempts: 3}}
  no_answer: {{delay_s: 60, max_attempts: 2}}
  failed: {{delay_s: 30, max_attempts: 2}}
  machine: {{delay_s: 100, max_attempts: 2}}
"""


def campaign(cid: str = "c1", *, priority: int = 0, trunk: str = "127.0.0.1:5070", extra: str = "") -> Campaign:
    result = load_text(BASE.format(id=cid, priority=priority, trunk=trunk) + extra, f"/tmp/{cid}.yaml")
    assert result.campaign is not None, [str(p) for p in result.problems]
    return result.campaign


def targets(*numbers: str, zone: str | None = None) -> list[Target]:
    return [Target(f"t{n}", n, {"name": f"N{n}"}, zone) for n in numbers]


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"call-{self.n}"


@pytest.fixture
def store(tmp_path: Path) -> CampaignStore:
    return CampaignStore(tmp_path / "outbound.db")


def dial(s: Scheduler, wall: dt.datetime, mono: float, ids: Ids) -> Dial | None:
    return s.next_dial(wall, mono, ids())


def first_dial(store: CampaignStore, extra: str = "") -> tuple[Scheduler, Ids, Dial]:
    """A scheduler with campaign c1 (`campaign(extra=extra)`), one target, and its first dial on Wednesday 10:00."""
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign(extra=extra))
    s.add_targets("c1", targets("13800000001"), WED_10_SH)
    d = dial(s, WED_10_SH, 0.0, ids)
    assert d is not None
    return s, ids, d


def test_dials_each_target_once_with_its_variables(store: CampaignStore) -> None:
    s, ids, d = first_dial(store)
    assert d.uri == "sip:13800000001@127.0.0.1:5070" and d.attempt == 1
    assert d.variables["name"] == "N13800000001" and d.variables["campaign"] == "c1"
    assert dial(s, WED_10_SH, 10.0, ids) is None  # dialling: not offered again
    state = s.finished(d, Result.ANSWERED, "confirmed", WED_10_SH)
    assert state.status is Status.DONE and state.result_code == "confirmed"
    assert dial(s, WED_10_SH + dt.timedelta(days=1), 99.0, ids) is None


def test_window_is_in_the_callees_zone(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    # 02:00 UTC is 10:00 in Shanghai but 21:00 (Tuesday) in New York: New York must wait.
    s.add_targets("c1", targets("13800000001", zone="America/New_York"), WED_10_SH)
    assert dial(s, WED_10_SH, 0.0, ids) is None
    nine_ny = dt.datetime(2026, 12, 2, 14, 0, tzinfo=dt.UTC)  # Wednesday 09:00 in New York
    assert s.target("c1", "t13800000001").next_at == nine_ny  # type: ignore[union-attr]
    assert dial(s, nine_ny - dt.timedelta(seconds=1), 1.0, ids) is None
    assert dial(s, nine_ny, 2.0, ids) is not None


def test_never_at_night_nor_weekends_nor_holidays(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    sat = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)  # Saturday 10:00 Shanghai
    s.add_targets("c1", targets("13800000001"), sat)
    assert dial(s, sat, 0.0, ids) is None
    monday_9 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
    assert s.target("c1", "t13800000001").next_at == monday_9  # type: ignore[union-attr]
    xmas = dt.datetime(2026, 12, 25, 2, 0, tzinfo=dt.UTC)  # a Friday, a holiday
    s.add_targets("c1", targets("13800000002"), xmas)
    assert dial(s, xmas, 1.0, ids) is None
    assert s.target("c1", "t13800000002").next_at == dt.datetime(2026, 12, 28, 1, 0, tzinfo=dt.UTC)  # type: ignore[union-attr]


def test_pacing_spreads_calls_and_caps_concurrency(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    s.add_targets("c1", targets(*(f"1380000000{i}" for i in range(5))), WED_10_SH)
    first = dial(s, WED_10_SH, 0.0, ids)
    assert first is not None
    assert dial(s, WED_10_SH, 0.4, ids) is None  # 2 calls/s: next slot at 0.5
    assert s.next_wakeup(WED_10_SH, 0.4) == pytest.approx(0.1)
    second = dial(s, WED_10_SH, 0.5, ids)
    assert second is not None
    assert dial(s, WED_10_SH, 5.0, ids) is None  # 2 concurrent: full
    assert s.next_wakeup(WED_10_SH, 5.0) is None
    s.finished(first, Result.ANSWERED, "confirmed", WED_10_SH)
    assert dial(s, WED_10_SH, 5.0, ids) is not None


def test_retries_follow_the_rule_of_each_result(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    s.add_targets("c1", targets("13800000001"), WED_10_SH)
    now, mono = WED_10_SH, 0.0
    d = dial(s, now, mono, ids)
    assert d is not None
    state = s.finished(d, Result.BUSY, None, now)
    assert state.status is Status.PENDING and state.next_at == now + dt.timedelta(seconds=600)
    assert dial(s, now + dt.timedelta(seconds=599), 10.0, ids) is None
    now += dt.timedelta(seconds=600)
    d = dial(s, now, 20.0, ids)
    assert d is not None and d.attempt == 2
    state = s.finished(d, Result.NO_ANSWER, None, now)  # no_answer allows 2 attempts in all: final
    assert state.status is Status.DONE and state.last_result is Result.NO_ANSWER
    attempts = store.attempts("c1")
    assert [(a.attempt, a.result) for a in attempts] == [(1, Result.BUSY), (2, Result.NO_ANSWER)]


def test_an_answered_attempt_without_a_result_code_is_retried_by_its_own_rule(store: CampaignStore) -> None:
    """A callee who hangs up before the flow sets its code has not been served: the `incomplete` rule decides."""
    s, ids, d = first_dial(store, "  incomplete: {delay_s: 900, max_attempts: 2}\n")
    state = s.finished(d, Result.INCOMPLETE, None, WED_10_SH)
    assert state.status is Status.PENDING and state.next_at == WED_10_SH + dt.timedelta(seconds=900)
    later = WED_10_SH + dt.timedelta(seconds=900)
    again = dial(s, later, 10.0, ids)
    assert again is not None and again.attempt == 2
    state = s.finished(again, Result.ANSWERED, "confirmed", later)
    assert state.status is Status.DONE and state.result_code == "confirmed"


def test_a_result_without_a_rule_is_final(store: CampaignStore) -> None:
    s, ids, d = first_dial(store)
    assert s.finished(d, Result.REJECTED, None, WED_10_SH).status is Status.DONE


def test_machine_leave_message_finishes(store: CampaignStore) -> None:
    s, ids, d = first_dial(store, "on_machine: leave_message\nmachine_flow: revisit_message\n")
    state = s.finished(d, Result.MACHINE, None, WED_10_SH)
    assert state.status is Status.DONE and state.result_code == MESSAGE_LEFT


def test_do_not_call_is_checked_at_dial_time(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    s.add_targets("c1", targets("13800000001", "13800000002"), WED_10_SH)
    s.set_do_not_call("c1", {"13800000001"})  # added after import: still obeyed
    d = dial(s, WED_10_SH, 0.0, ids)
    assert d is not None and d.target.number == "13800000002"
    state = s.target("c1", "t13800000001")
    assert state is not None and state.status is Status.DONE and state.result_code == DO_NOT_CALL
    assert state.attempts == 0 and [a.target_id for a in store.attempts("c1")] == ["t13800000002"]


def test_priority_among_campaigns_on_one_trunk(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign("low", priority=1))
    s.add_campaign(campaign("high", priority=9))
    s.add_targets("low", targets("13800000001"), WED_10_SH - dt.timedelta(hours=1))
    s.add_targets("high", targets("13800000002"), WED_10_SH)
    d = dial(s, WED_10_SH, 0.0, ids)
    assert d is not None and d.campaign == "high"


def test_paused_campaign_dials_nothing(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    s.add_targets("c1", targets("13800000001"), WED_10_SH)
    s.pause("c1")
    assert dial(s, WED_10_SH, 0.0, ids) is None and s.next_wakeup(WED_10_SH, 0.0) is None
    again = Scheduler(store)  # the pause survives a restart
    again.add_campaign(campaign())
    assert again.is_paused("c1") and dial(again, WED_10_SH, 0.0, ids) is None
    again.resume("c1")
    assert dial(again, WED_10_SH, 0.0, ids) is not None


def test_restart_resumes_without_redialling_an_attempt(tmp_path: Path) -> None:
    path = tmp_path / "outbound.db"
    ids = Ids()
    first = Scheduler(CampaignStore(path))
    first.add_campaign(campaign())
    first.add_targets("c1", targets(*(f"1380000000{i}" for i in range(4))), WED_10_SH)
    a = dial(first, WED_10_SH, 0.0, ids)
    b = dial(first, WED_10_SH, 1.0, ids)
    assert a is not None and b is not None
    first.finished(a, Result.ANSWERED, "confirmed", WED_10_SH)
    # crash: b is still dialling, two targets untouched
    later = WED_10_SH + dt.timedelta(seconds=5)
    second = Scheduler(CampaignStore(path))
    second.add_campaign(campaign())
    interrupted = second.target("c1", b.target.target_id)
    assert interrupted is not None and interrupted.result_code == INTERRUPTED
    assert interrupted.status is Status.PENDING and interrupted.attempts == 1
    dialled = []
    mono = 10.0
    now = later + dt.timedelta(seconds=60)
    while (d := dial(second, now, mono, ids)) is not None:
        dialled.append((d.target.target_id, d.attempt))
        second.finished(d, Result.ANSWERED, "confirmed", now)
        mono += 1.0
    assert sorted(dialled) == [("t13800000001", 2), ("t13800000002", 1), ("t13800000003", 1)]
    attempts = [(x.target_id, x.attempt) for x in second.store.attempts("c1")]
    assert len(attempts) == len(set(attempts)) == 5
    progress = second.progress("c1")
    assert (progress.targets, progress.attempted, progress.completed) == (4, 4, 4)
    assert progress.completion_rate == 1.0


def test_progress_counts_completed_without_a_human(store: CampaignStore) -> None:
    s, ids = Scheduler(store), Ids()
    s.add_campaign(campaign())
    s.add_targets("c1", targets("13800000001", "13800000002", "13800000003", "13800000004"), WED_10_SH)
    codes = ["confirmed", "wants_call", "declined"]
    mono = 0.0
    for code in codes:
        d = dial(s, WED_10_SH, mono, ids)
        assert d is not None
        s.finished(d, Result.ANSWERED, code, WED_10_SH)
        mono += 1
    p = s.progress("c1")
    assert p.to_json() == {
        "campaign": "c1", "paused": False, "targets": 4, "attempted": 3, "completed": 2, "done": 3,
        "completion_rate": 0.5, "results": {"confirmed": 1, "wants_call": 1, "declined": 1},
    }


def test_adding_a_target_twice_keeps_the_first(store: CampaignStore) -> None:
    s = Scheduler(store)
    s.add_campaign(campaign())
    assert s.add_targets("c1", targets("13800000001"), WED_10_SH) == 1
    assert s.add_targets("c1", targets("13800000001"), WED_10_SH) == 0


def test_no_window_finishes_target(store: CampaignStore) -> None:
    base = campaign()
    every_day_a_holiday = tuple(dt.date(2026, 12, 2) + dt.timedelta(days=i) for i in range(420))
    s, ids = Scheduler(store), Ids()
    s.add_campaign(Campaign(dataclasses.replace(base.spec, holidays=every_day_a_holiday), base.path))
    s.add_targets("c1", targets("13800000001"), WED_10_SH)
    assert dial(s, WED_10_SH, 0.0, ids) is None
    state = s.target("c1", "t13800000001")
    assert state is not None and state.status is Status.DONE and state.result_code == NO_WINDOW


def test_an_attempt_claimed_elsewhere_is_skipped_not_dialled_again(tmp_path: Path) -> None:
    """Two schedulers over one state (a node whose memory is older than another's claim): the claim is
    conditional, so the stale one skips the target and dials the next; nothing is claimed twice."""
    first, stale = Scheduler(CampaignStore(tmp_path / "o.db")), Scheduler(CampaignStore(tmp_path / "o.db"))
    for s in (first, stale):
        s.add_campaign(campaign())
    first.add_targets("c1", targets("13800000001", "13800000002"), WED_10_SH)
    stale.refresh()
    claimed = first.next_dial(WED_10_SH, 0.0, "call-1")
    other = stale.next_dial(WED_10_SH, 0.0, "call-2")
    assert claimed is not None and other is not None
    assert (claimed.target.number, other.target.number) == ("13800000001", "13800000002")
    keys = [(a.target_id, a.attempt) for a in first.store.attempts("c1")]
    assert sorted(keys) == [("t13800000001", 1), ("t13800000002", 1)]
