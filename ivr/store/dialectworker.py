"""A caller's remembered dialect, asked off the event loop: one thread owns the database connection.

The dialect memory is read at every call's answer and written at its end. Those are blocking database
calls; made on the event loop, a PostgreSQL host that does not answer holds the loop up to the connect
timeout, and a reachable one still costs a round trip per call, while media for every call is paced
from that loop (issue 22). A `DialectWorker` runs a blocking `ClosableDialectMemory` (PostgreSQL or
SQLite) on one thread of its own, which opens it (a SQLite connection belongs to its thread), fed
through one bounded FIFO queue (a lookup after a write from the same number sees it); the lookups asked
within `gather_s` of each other (the engine: `GATHER_S`, 10 ms; 0: those of one iteration of the loop) are
handed over as one batch and answered in one call back, so a busy engine wakes the thread once for several
calls:

- `await lookup(caller)` waits at most `lookup_budget_s` on the engine's `Clock`; a slower answer is
  "nothing remembered" (the caller is greeted in the flow's default dialect, as when the database is
  down) and, if it has not started yet, the lookup is skipped by the thread.
- `set(caller, dialect)` returns at once; the write waits its turn, so a merely slow database loses
  nothing. Past `max_pending` queued jobs it is dropped with a warning and counted in `dropped_writes`.
- `close()` lets the queued writes finish (up to `close_timeout_s`), then closes the memory on its thread.

Why a thread and not psycopg's `AsyncConnection`: one mechanism serves both backends (there is no async
SQLite driver in our dependencies), the backends keep their tested failure handling (a failure is a
hint; PostgreSQL rests 5 s after two failures), and nothing the driver does while connecting (name
resolution, a connect to a host that never answers) can reach the loop. One thread is enough: the
queries are single-row primary-key reads and upserts.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from ivr.clock import Clock, LoopClock

log = structlog.get_logger(__name__)

LOOKUP_BUDGET_S = 0.2
"""How long a call's answer waits for the caller's remembered dialect before going on without it."""
MAX_PENDING = 1024
"""Queued lookups and writes past which a write is dropped (and a lookup answers at once)."""
CLOSE_TIMEOUT_S = 10.0
"""How long `close` waits for the queued writes to reach the database."""
GATHER_S = 0.01
"""How long the engine's first lookup of a batch waits for others to share its hand-off to the thread: each
hand-off is a wake-up of the thread and the GIL passed over and back, and at hundreds of calls a second
these were ~5% of a call's CPU (issue 22); 10 ms is small beside the lookup budget and a greeting."""


class ClosableDialectMemory(Protocol):
    """A blocking dialect memory (`PostgresDialectMemory`, `ivr.voice.SqliteDialectMemory`)."""

    def get(self, caller: str) -> str | None: ...

    def set(self, caller: str, dialect: str) -> None: ...

    def close(self) -> None: ...


class DialectWriter(Protocol):
    """Remembers a caller's dialect without making its caller wait (`ivr.voice.DialectMemory` fits)."""

    def set(self, caller: str, dialect: str) -> None: ...


class DialectLookup(DialectWriter, Protocol):
    """The dialect memory as the event loop uses it: an awaited lookup, a write that does not wait."""

    async def lookup(self, caller: str) -> str | None: ...


@dataclass(slots=True)
class _Lookup:
    caller: str
    loop: asyncio.AbstractEventLoop
    answered: asyncio.Future[str | None]
    """Settled on `loop`: by the thread's answer, or with None when the budget runs out."""
    abandoned: bool = False
    """Set on the loop when the budget ran out: the thread skips a lookup it has not started."""


@dataclass(slots=True, frozen=True)
class _Write:
    caller: str
    dialect: str


@dataclass(slots=True)
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


class DialectWorker:
    """A blocking dialect memory run on one thread, behind a bounded queue (see the module)."""

    __slots__ = ("_budget_s", "_clock", "_close_timeout_s", "_gather_s", "_jobs", "_max_pending", "_outbox",
                 "_thread", "dropped_writes", "late_lookups")

    def __init__(
        self,
        open_memory: Callable[[], ClosableDialectMemory],
        *,
        clock: Clock | None = None,
        lookup_budget_s: float = LOOKUP_BUDGET_S,
        max_pending: int = MAX_PENDING,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        gather_s: float = 0.0,
        name: str = "dialect-memory",
    ) -> None:
        """Opens the memory on the new thread and waits for it (start-up, before any call): an error
        opening it (an unreachable database) is raised here. `gather_s`: how long a lookup waits (on the
        loop's time: a batching delay, not a protocol timer) for others to go to the thread with it; 0:
        until the end of this iteration of the loop."""
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._budget_s = lookup_budget_s
        self._gather_s = gather_s
        self._close_timeout_s = close_timeout_s
        self._jobs: queue.SimpleQueue[_Lookup | _Write | _Stop | list[_Lookup]] = queue.SimpleQueue()
        """FIFO to the thread: writes one by one, lookups as one batch per iteration of the loop."""
        self._max_pending = max_pending
        self._outbox: list[_Lookup] = []
        """Lookups asked since the batch began, handed to the thread together `gather_s` after the first."""
        self.dropped_writes = 0
        """Writes dropped because `max_pending` jobs were queued (the database is far behind)."""
        self.late_lookups = 0
        """Lookups answered "nothing remembered" because the budget ran out or the queue was full."""
        opened: list[ClosableDialectMemory | BaseException] = []
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(open_memory, opened, ready), name=name, daemon=True)
        self._thread.start()
        ready.wait()
        if isinstance(opened[0], BaseException):
            self._thread.join()
            raise opened[0]

    async def lookup(self, caller: str) -> str | None:
        """The caller's remembered dialect; None when there is none, or no answer within the budget."""
        if self._full():
            self.late_lookups += 1
            log.warning("dialect_lookup_skipped", reason="queue_full", late_lookups=self.late_lookups)
            return None
        loop = asyncio.get_running_loop()
        job = _Lookup(caller, loop, loop.create_future())
        # Each hand-off wakes the thread (a futex, a context switch, the GIL passed over and back): the
        # lookups asked within `gather_s` go together, so a busy engine wakes the thread once for several
        # calls rather than once each (issue 22).
        if not self._outbox:
            if self._gather_s > 0:
                loop.call_later(self._gather_s, self._post)
            else:
                loop.call_soon(self._post)
        self._outbox.append(job)

        def too_late() -> None:
            if not job.answered.done():
                self.late_lookups += 1
                log.warning("dialect_lookup_late", budget_s=self._budget_s, late_lookups=self.late_lookups)
                job.answered.set_result(None)

        timer = self._clock.call_at(self._clock.now() + self._budget_s, too_late)
        try:
            return await job.answered
        finally:
            timer.cancel()
            job.abandoned = True

    def _post(self) -> None:
        batch, self._outbox = self._outbox, []
        if batch:
            self._jobs.put(batch)

    def _full(self) -> bool:
        """`max_pending` jobs wait (a batch of lookups counts once: it is one query round for the thread)."""
        return self._jobs.qsize() + len(self._outbox) >= self._max_pending

    def set(self, caller: str, dialect: str) -> None:
        """Queue a write of the caller's dialect; returns at once (dropped, with a warning, when full)."""
        if self._full():
            self.dropped_writes += 1
            log.warning("dialect_write_dropped", reason="queue_full", dropped_writes=self.dropped_writes)
            return
        self._jobs.put(_Write(caller, dialect))

    def close(self) -> None:
        """Let the queued writes finish (up to `close_timeout_s`), then close the memory on its thread."""
        if not self._thread.is_alive():
            return
        stop = _Stop()
        self._jobs.put(stop)
        if not stop.done.wait(self._close_timeout_s):
            log.warning("dialect_writes_lost_at_close", pending=self._jobs.qsize())

    # -- the worker thread ------------------------------------------------------------------------------

    def _run(
        self,
        open_memory: Callable[[], ClosableDialectMemory],
        opened: list[ClosableDialectMemory | BaseException],
        ready: threading.Event,
    ) -> None:
        try:
            memory = open_memory()
        except BaseException as exc:  # handed to the constructor, which raises it on its own thread
            opened.append(exc)
            ready.set()
            return
        opened.append(memory)
        ready.set()
        while True:
            job = self._jobs.get()
            if isinstance(job, list):
                self._answer(memory, job)
            elif isinstance(job, _Stop):
                memory.close()
                job.done.set()
                return
            elif isinstance(job, _Write):
                try:
                    memory.set(job.caller, job.dialect)
                except Exception as exc:  # the thread outlives a failed query: the memory is a hint
                    log.warning("dialect_memory_failed", write=True, error=str(exc))

    @staticmethod
    def _answer(memory: ClosableDialectMemory, batch: list[_Lookup]) -> None:
        """Ask the memory for each lookup still waiting, then hand the answers to their loop in one go."""
        answers: dict[asyncio.AbstractEventLoop, list[tuple[_Lookup, str | None]]] = {}
        for job in batch:
            if job.abandoned:
                continue
            try:
                value = memory.get(job.caller)
            except Exception as exc:  # the thread outlives a failed query: the memory is a hint
                log.warning("dialect_memory_failed", write=False, error=str(exc))
                value = None
            answers.setdefault(job.loop, []).append((job, value))
        for loop, settled in answers.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for these answers any more
                pass


def _settle(answers: list[tuple[_Lookup, str | None]]) -> None:
    for job, value in answers:
        if not job.answered.done():
            job.answered.set_result(value)


__all__ = ["CLOSE_TIMEOUT_S", "GATHER_S", "LOOKUP_BUDGET_S", "MAX_PENDING", "ClosableDialectMemory", "DialectLookup",
           "DialectWorker", "DialectWriter"]
