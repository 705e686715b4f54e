"""Store benchmark: what a JourneySink call costs the event loop, how fast the writer thread commits,
and how long the dashboard's queries take over a full day (66,000 calls) in SQLite.

The hotline's peak is 4,500 calls in 15 minutes (5 calls/s), each with a record and ~8 journey steps.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.journey import CallRecord, JourneyEvent, Outcome  # noqa: E402
from ivr.store import CallQuery, SqliteStore, Synchronous  # noqa: E402

DAY_CALLS = 66_000
STEPS = 6
T0 = datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC)
OUTCOMES = (Outcome.SELF_SERVED, Outcome.TO_AGENT, Outcome.TO_AGENT, Outcome.ABANDONED, Outcome.CALLBACK)


def write_day(store: SqliteStore, calls: int) -> tuple[float, int]:
    """Report `calls` calls through the JourneySink; return (seconds spent in the calls, ops)."""
    spent = 0.0
    ops = 0
    step = datetime.timedelta(seconds=86_400 / calls)
    for i in range(calls):
        start = T0 + step * i
        rec = CallRecord(f"c{i:06d}", f"138{i:08d}", "95500", start, flow_id="hotline", dialect="cmn")
        broken = i % 6 == 0  # about one call in six has a self-service breakpoint
        events = [
            JourneyEvent(
                rec.call_id,
                s,
                start,
                f"node{s}",
                "node_entered",
                {"said": "查理赔"},
                breakpoint=broken and s == 4,
            )
            for s in range(STEPS)
        ]
        rec.outcome, rec.intent = OUTCOMES[i % len(OUTCOMES)], ("claim_status", "payment", "renewal")[i % 3]
        if rec.outcome is not Outcome.SELF_SERVED:
            rec.queue, rec.wait_s = "claims", float(i % 60)
            rec.agent_id = "a1" if rec.outcome is Outcome.TO_AGENT else ""
        rec.survey_score = i % 11 if i % 4 == 0 else None
        t = time.perf_counter()
        store.call_started(rec)
        for event in events:
            store.journey_event(event)
        store.call_finished(rec)
        spent += time.perf_counter() - t
        ops += STEPS + 2
    return spent, ops


def timed(fn: object, reps: int = 5) -> float:
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## Store: JourneySink cost on the loop, writer throughput, dashboard queries over a day\n")
    machine = f"{platform.machine()}, nproc {os.cpu_count()}"
    print(f"Command: `python -m bench.store` · machine: {machine} · {started}\n")
    print(f"Each call: 1 call_started + {STEPS} journey events + 1 call_finished (8 writes).\n")
    print("| SQLite synchronous | calls | µs per sink call (caller thread) | writes/s committed | calls/s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        day_store = None
        for mode, calls in ((Synchronous.NORMAL, 20_000), (Synchronous.FULL, DAY_CALLS)):
            store = SqliteStore(pathlib.Path(tmp) / f"{mode.value}.db", synchronous=mode)
            t = time.perf_counter()
            spent, ops = write_day(store, calls)
            store.flush()
            total = time.perf_counter() - t
            print(
                f"| {mode.value} | {calls:,} | {spent / ops * 1e6:.1f} "
                f"| {ops / total:,.0f} | {calls / total:,.0f} |"
            )
            if mode is Synchronous.FULL:
                day_store = store
            else:
                store.close()
        assert day_store is not None
        day_end = T0 + datetime.timedelta(days=1)
        summary_s = timed(lambda: day_store.summary(T0, day_end))
        page_s = timed(lambda: day_store.list_calls(CallQuery(limit=50, intent="payment")))
        detail_s = timed(lambda: day_store.get_call("c033000"))
        day_store.close()
    print(
        f"\nOver one day of {DAY_CALLS:,} calls ({DAY_CALLS * (STEPS + 2):,} rows written): "
        f"summary {summary_s * 1000:.0f} ms, a filtered page of 50 calls {page_s * 1000:.1f} ms, "
        f"one call with its journey {detail_s * 1000:.2f} ms (medians of 5; run in a thread by the API, "
        "and the summary is cached 2 s per window).\n"
    )


if __name__ == "__main__":
    main()
