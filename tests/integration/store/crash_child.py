"""Child process for the kill -9 test: writes calls through a SqliteStore until it is killed.

Prints `inprogress <ids>` once the in-progress calls are committed, then `committed <ids>` once the
finished calls are committed, then keeps writing more calls (unflushed) until SIGKILL arrives.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from itertools import count

from ivr.journey import CallRecord, JourneyEvent, Outcome
from ivr.store import SqliteStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def journey(store: SqliteStore, call_id: str, steps: int) -> None:
    for seq in range(steps):
        store.journey_event(
            JourneyEvent(call_id, seq, T0 + timedelta(seconds=seq), f"node{seq}", "node_entered",
                         {"said": f"第{seq}步"}, breakpoint=seq == 2)
        )  # fmt: skip


def main() -> None:
    db, finished_n, live_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = SqliteStore(db)
    live = [f"live-{i}" for i in range(live_n)]
    for call_id in live:
        store.call_started(CallRecord(call_id, "138", "95500", T0, dialect="yue"))
        journey(store, call_id, 3)
    store.flush()
    print("inprogress", " ".join(live), flush=True)
    done = []
    for i in range(finished_n):
        rec = CallRecord(f"done-{i}", "139", "95500", T0 + timedelta(seconds=i), intent="claim_status")
        store.call_started(rec)
        journey(store, rec.call_id, 2)
        rec.outcome, rec.ended_at = Outcome.SELF_SERVED, rec.started_at + timedelta(seconds=30)
        store.call_finished(rec)
        done.append(rec.call_id)
    store.flush()
    print("committed", " ".join(done), flush=True)
    for i in count():  # keep the writer busy until the kill lands mid-write
        rec = CallRecord(f"extra-{i}", "137", "95500", T0)
        store.call_started(rec)
        journey(store, rec.call_id, 3)
        rec.outcome = Outcome.TO_AGENT
        store.call_finished(rec)
        if i % 200 == 0:
            store.flush()


if __name__ == "__main__":
    main()
