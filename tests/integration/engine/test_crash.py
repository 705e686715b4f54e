"""kill -9 of `ivr serve` under load: finished calls keep their records; calls cut off are marked
`interrupted` at restart, with the journey they had so far.

Six real SIP calls at once: three hang up early (finished, `abandoned`), three are still up when the
engine is killed — one listening to the open question, one queued for a human (no agent is logged
in), one elderly caller in the dialect menu. "Finished" means the engine's API showed the call's
finished record before the kill: the store commits a finished call the moment it is handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
from typing import Any

import pytest

from ivr.store import SqliteStore
from ivr.testing.caller import CallReport, Keys, Pause, Step, TestCaller
from tests.integration.engine.agents import log_events, wait_for_log
from tests.integration.engine.conftest import RunningEngine, needs_tts, start_engine, stop_engine

pytestmark = [pytest.mark.integration, needs_tts]

FINISHED = {"13600000301": 2.0, "13600000302": 3.0, "13600000303": 4.0}
"""Callers who hang up by themselves, and after how many seconds."""
LISTENING = "13600000311"
QUEUED = "13600000312"
IN_MENU = "13900000003"
"""A 75-year-old demo customer: the flow plays her the elderly dialect menu."""
IN_PROGRESS = (LISTENING, QUEUED, IN_MENU)


async def kill_mid_load(engine: RunningEngine, caller: TestCaller) -> dict[str, CallReport]:
    finished = [
        asyncio.create_task(caller.call(engine.uri, [Pause(s)], from_number=n, linger_s=0.0))
        for n, s in FINISHED.items()
    ]
    scripts: dict[str, list[Step]] = {
        LISTENING: [Pause(120.0)],
        QUEUED: [Pause(1.0), Keys("0"), Pause(120.0)],
        IN_MENU: [Pause(120.0)],
    }
    ongoing = [
        asyncio.create_task(caller.call(engine.uri, steps, from_number=n, linger_s=0.0, max_duration_s=120.0))
        for n, steps in scripts.items()
    ]
    try:
        reports = await asyncio.gather(*finished)
        # The queued caller has heard "please hold" and waits for an agent; the others are mid-flow.
        await wait_for_log(engine, "prompt_played", 60.0, prompt="elderly_menu")
        queued_id = (await wait_for_log(engine, "invite_received", 10.0, caller=QUEUED))[0]["call_id"]
        await until_enqueued(engine, str(queued_id))
        for report in reports:  # the store commits a finished call the moment it is handed over
            await asyncio.to_thread(engine.call_detail, report.call_id)
        assert all(not task.done() for task in ongoing), "a call meant to be in progress had ended"
        os.kill(engine.process.pid, signal.SIGKILL)
        await asyncio.to_thread(engine.process.wait, 10)
    finally:
        for task in ongoing:
            task.cancel()
        await asyncio.gather(*ongoing, return_exceptions=True)
    return {report.call_id: report for report in reports}


async def until_enqueued(engine: RunningEngine, call_id: str, timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            detail = await asyncio.to_thread(engine.get, f"/api/calls/{call_id}")
            if any(e["kind"] == "enqueued" for e in detail["journey"]):
                return
            await asyncio.sleep(0.25)


async def close_quickly(caller: TestCaller) -> None:
    """Close the test caller without waiting out Timer F on BYEs the killed engine never answers."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2.0):
            await caller.ua.close()
    await caller.ua.transport.close()
    caller.media.close()


def call_ids_by_caller(engine: RunningEngine) -> dict[str, str]:
    return {str(e["caller"]): str(e["call_id"]) for e in log_events(engine, "invite_received")}


async def test_kill_9_loses_no_finished_call_and_marks_the_others_interrupted(tmp_path: pathlib.Path) -> None:
    engine = start_engine(tmp_path)
    caller = await TestCaller.open(rtp_ports=(43600, 43698))
    try:
        finished = await kill_mid_load(engine, caller)
    finally:
        await close_quickly(caller)
        if engine.process.poll() is None:
            stop_engine(engine)
    assert engine.process.returncode == -signal.SIGKILL
    ids = call_ids_by_caller(engine)
    assert set(ids) == set(FINISHED) | set(IN_PROGRESS)
    assert set(finished) == {ids[n] for n in FINISHED}

    # What the dead engine left on disk (read-only: neither migrates nor marks anything).
    store = SqliteStore(engine.db, read_only=True)
    try:
        for number in FINISHED:
            detail = store.get_call(ids[number])
            assert detail is not None, f"the finished call from {number} was lost"
            assert not detail.in_progress and detail.record.outcome is not None, f"{number}: not finished on disk"
        for number in IN_PROGRESS:
            cut = store.get_call(ids[number])
            assert cut is not None and cut.in_progress, f"{number}: a call in progress was not on disk as such"
    finally:
        store.close()

    (tmp_path / "engine.log").rename(tmp_path / "engine-killed.log")
    restarted = start_engine(tmp_path)
    try:
        for number in FINISHED:
            kept: dict[str, Any] = restarted.get(f"/api/calls/{ids[number]}")
            rec = kept["record"]
            assert (kept["in_progress"], rec["outcome"]) == (False, "abandoned"), number
            kinds = [e["kind"] for e in kept["journey"]]
            assert kinds[0] == "call_started" and kinds[-1] == "call_finished", kinds
        for number in IN_PROGRESS:
            cut_off: dict[str, Any] = restarted.get(f"/api/calls/{ids[number]}")
            rec = cut_off["record"]
            assert cut_off["in_progress"] is False and rec["outcome"] == "interrupted", (number, rec)
            journey = cut_off["journey"]
            assert journey and journey[0]["kind"] == "call_started", f"{number}: journey lost"
            assert [e["seq"] for e in journey] == list(range(len(journey)))
            entered = [e["node"] for e in journey if e["kind"] == "node_entered"]
            assert {"need", "elderly_menu"} & set(entered), f"{number}: the journey reaches the first question"
        queued = restarted.get(f"/api/calls/{ids[QUEUED]}")
        waits = [e["data"]["queue"] for e in queued["journey"] if e["kind"] == "enqueued"]
        assert waits == ["general"], "the journey keeps the queue the caller was waiting in"
        menu = restarted.get(f"/api/calls/{ids[IN_MENU]}")
        assert "elderly_menu" in [e["node"] for e in menu["journey"] if e["kind"] == "node_entered"]
        summary = restarted.get("/api/reports/summary")
        assert (summary["calls"], summary["finished"], summary["interrupted"], summary["in_progress"]) == (
            len(FINISHED) + len(IN_PROGRESS),
            len(FINISHED),
            len(IN_PROGRESS),
            0,
        )
    finally:
        stop_engine(restarted)
