"""The single writer: one thread that takes queued writes and commits them, so the event loop never waits.

Callers `submit` an `Op` (a non-blocking put on an unbounded queue) and go on. The thread takes
everything queued, applies it in one transaction and commits (group commit): after the first op of a
batch it waits up to `GROUP_COMMIT_S` for more, so a call's half-dozen writes and its neighbours' share
one commit (one fsync, one thread wake-up) instead of one each; a `flush()` or `close()` commits at once.
A batch that fails on bad data is retried op by op, so one bad row never costs the others; a transient
failure (database restarting, lock held) is retried with backoff, keeping the ops queued. `flush()`
waits until everything submitted before it is durable.
"""

from __future__ import annotations

import enum
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from ivr.store.errors import StoreClosed
from ivr.store.records import Committed

log = structlog.get_logger(__name__)

MAX_BATCH = 500
GROUP_COMMIT_S = 0.1
"""How long the first write of a batch waits for others to share its commit (durability latency: a crash of the
engine, kill -9 or power, loses at most the writes of this last moment). A commit's fixed cost (~0.6 ms of CPU, ~40
pages written) is what a call's record writes mostly pay: 0.1 s instead of 0.02 s takes 4-12 % off a call's CPU at
150-600 calls/s (bench/RESULTS.md "issue 22, store commits"), for 80 ms more of records a crash can lose."""
BACKLOG_WARNING = 10_000
"""Queued writes past which the writer logs `store_backlog` (the database is falling behind)."""


class OpKind(enum.Enum):
    CALL_STARTED = "call_started"
    JOURNEY_EVENT = "journey_event"
    CALL_FINISHED = "call_finished"
    SURVEY = "survey"
    DISPATCH = "dispatch"
    NODE_LOST = "node_lost"


@dataclass(slots=True, frozen=True)
class Op:
    """One write, with its column values already encoded (so later changes to the record don't leak in)."""

    kind: OpKind
    call_id: str
    params: tuple[object, ...]


class WriteTarget(Protocol):
    """What the writer commits to; the SQL store implements it."""

    def write(self, ops: Sequence[Op]) -> None:
        """Apply `ops` in one transaction and commit; roll back and raise on failure."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """True when retrying the same ops later may succeed (connection lost, database locked)."""
        ...

    def reset(self) -> None:
        """Drop the connection after a transient failure; the next `write` reconnects."""
        ...


class _Barrier:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Stop:
    __slots__ = ()


Listener = Callable[[Committed], None]


def summarize(ops: Sequence[Op]) -> Committed:
    counts = dict.fromkeys(OpKind, 0)
    for op in ops:
        counts[op.kind] += 1
    return Committed(
        calls_started=counts[OpKind.CALL_STARTED],
        calls_finished=counts[OpKind.CALL_FINISHED],
        events=counts[OpKind.JOURNEY_EVENT],
        surveys=counts[OpKind.SURVEY],
        dispatches=counts[OpKind.DISPATCH],
        call_ids=tuple(dict.fromkeys(op.call_id for op in ops if op.call_id)),
    )


class SingleWriter:
    """One daemon thread committing queued `Op`s to a `WriteTarget`."""

    def __init__(
        self,
        target: WriteTarget,
        *,
        name: str = "ivr-store-writer",
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        retries_when_closing: int = 3,
        group_commit_s: float = GROUP_COMMIT_S,
    ) -> None:
        self._target = target
        self._group_commit_s = group_commit_s
        self._queue: queue.SimpleQueue[Op | _Barrier | _Stop] = queue.SimpleQueue()
        self._listeners: list[Listener] = []
        self._closed = False
        self._closing = threading.Event()
        self._urgent = threading.Event()
        """Set by `flush()` and `close()`: the batch being gathered is committed without waiting."""
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retries_when_closing = retries_when_closing
        self.failed_ops = 0
        """Ops dropped after a non-transient failure (each logged with the cause)."""
        self.committed_ops = 0
        self._next_backlog_warning = BACKLOG_WARNING
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Writes queued and not yet committed (approximate)."""
        return self._queue.qsize()

    def submit(self, op: Op) -> None:
        if self._closed:
            raise StoreClosed(f"store is closed: cannot {op.kind.value} for call {op.call_id!r}")
        self._queue.put(op)

    def on_commit(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` (on the writer thread) after each commit; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until every op submitted before this call is committed (or dropped); False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        barrier = _Barrier()
        self._queue.put(barrier)
        self._urgent.set()
        return barrier.done.wait(timeout_s)

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Commit what is queued, then stop the thread. Later `submit`s raise `StoreClosed`."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._queue.put(_Stop())
        self._urgent.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("store_writer_stuck", backlog=self.backlog, timeout_s=timeout_s)

    def _run(self) -> None:
        stop = False
        while not stop:
            items = self._take()
            ops = [item for item in items if isinstance(item, Op)]
            if ops:
                self._watch_backlog()
                self._commit(ops)
            for item in items:
                if isinstance(item, _Barrier):
                    item.done.set()
                elif isinstance(item, _Stop):
                    stop = True

    def _take(self) -> list[Op | _Barrier | _Stop]:
        """The next batch: what is queued once the first op has waited `group_commit_s` for company (cut
        short by `flush()` or `close()`, which want their commit now). The wait is on `_urgent`, not on
        the queue, so the ops submitted meanwhile do not each wake this thread."""
        first = self._queue.get()
        if isinstance(first, Op) and self._group_commit_s > 0:
            self._urgent.wait(self._group_commit_s)
        self._urgent.clear()
        items = [first]
        while len(items) < MAX_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _watch_backlog(self) -> None:
        """Log `store_backlog` when the queue passes 10,000 writes and each time it doubles after;
        `store_backlog_cleared` once it is back under half the threshold."""
        queued = self.backlog
        if queued > self._next_backlog_warning:
            log.warning("store_backlog", queued=queued)
            self._next_backlog_warning = queued * 2
        elif queued < BACKLOG_WARNING // 2 and self._next_backlog_warning > BACKLOG_WARNING:
            log.info("store_backlog_cleared", queued=queued)
            self._next_backlog_warning = BACKLOG_WARNING

    def _commit(self, ops: list[Op]) -> None:
        delay = self._retry_initial_s
        attempts = 0
        while True:
            try:
                self._target.write(ops)
            except Exception as exc:  # the writer thread's boundary: every failure is handled below
                attempts += 1
                if self._target.is_transient(exc):
                    self._target.reset()
                    giving_up = self._closing.is_set() and attempts > self._retries_when_closing
                    log.warning(
                        "store_write_retry",
                        ops=len(ops),
                        attempt=attempts,
                        giving_up=giving_up,
                        exc_info=True,
                    )
                    if giving_up:
                        self._drop(ops, exc)
                        return
                    self._closing.wait(delay)
                    delay = min(delay * 2, self._retry_max_s)
                    continue
                if len(ops) > 1:
                    for op in ops:
                        self._commit([op])
                    return
                self._drop(ops, exc)
                return
            self.committed_ops += len(ops)
            self._notify(summarize(ops))
            return

    def _drop(self, ops: list[Op], exc: BaseException) -> None:
        self.failed_ops += len(ops)
        for op in ops:
            log.error(
                "store_write_failed", kind=op.kind.value, call_id=op.call_id, error=str(exc), exc_info=exc
            )

    def _notify(self, committed: Committed) -> None:
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("store_listener_failed", listener=repr(listener))
