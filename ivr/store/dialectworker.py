"""A caller's remembered dialect, asked off the event loop: one thread owns the database connection.

The dialect memory is read at every call's answer and written at its end. Those are blocking database
calls; made on the event loop, a PostgreSQL host that does not answer holds the loop up to the connect
timeout, and a reachable one still costs a round trip per call, while media for every call is paced
from that loop (issue 22). A `DialectWorker` runs a blocking `ClosableDialectMemory` (PostgreSQL or
SQLite) on one thread of its own, which opens it (a SQLite connection belongs to its thread), fed
through one bounded FIFO queue (a lookup after a write from the same number sees it):

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
    answer: Callable[[str | None], None]
    """Called on the worker thread with the answer (it hands the answer to the loop)."""
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

    __slots__ = ("_budget_s", "_clock", "_close_timeout_s", "_jobs", "_thread", "dropped_writes", "late_lookups")

    def __init__(
        self,
        open_memory: Callable[[], ClosableDialectMemory],
        *,
        clock: Clock | None = None,
        lookup_budget_s: float = LOOKUP_BUDGET_S,
        max_pending: int = MAX_PENDING,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        name: str = "dialect-memory",
    ) -> None:
        """Opens the memory on the new thread and waits for it (start-up, before any call): an error
        opening it (an unreachable database) is raised here."""
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._budget_s = lookup_budget_s
        self._close_timeout_s = close_timeout_s
        self._jobs: queue.Queue[_Lookup | _Write | _Stop] = queue.Queue(maxsize=max_pending)
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
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[str | None] = loop.create_future()

        def settle(value: str | None) -> None:
            if not answered.done():
                answered.set_result(value)

        def from_thread(value: str | None) -> None:
            try:
                loop.call_soon_threadsafe(settle, value)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for this answer any more
                pass

        def too_late() -> None:
            if not answered.done():
                self.late_lookups += 1
                log.warning("dialect_lookup_late", budget_s=self._budget_s, late_lookups=self.late_lookups)
                answered.set_result(None)

        job = _Lookup(caller, from_thread)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.late_lookups += 1
            log.warning("dialect_lookup_skipped", reason="queue_full", late_lookups=self.late_lookups)
            return None
        timer = self._clock.call_at(self._clock.now() + self._budget_s, too_late)
        try:
            return await answered
        finally:
            timer.cancel()
            job.abandoned = True

    def set(self, caller: str, dialect: str) -> None:
        """Queue a write of the caller's dialect; returns at once (dropped, with a warning, when full)."""
        try:
            self._jobs.put_nowait(_Write(caller, dialect))
        except queue.Full:
            self.dropped_writes += 1
            log.warning("dialect_write_dropped", reason="queue_full", dropped_writes=self.dropped_writes)

    def close(self) -> None:
        """Let the queued writes finish (up to `close_timeout_s`), then close the memory on its thread."""
        if not self._thread.is_alive():
            return
        stop = _Stop()
        try:
            self._jobs.put(stop, timeout=self._close_timeout_s)
        except queue.Full:
            log.warning("dialect_writes_lost_at_close", pending=self._jobs.qsize())
            return
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
            if isinstance(job, _Stop):
                memory.close()
                job.done.set()
                return
            try:
                if isinstance(job, _Write):
                    memory.set(job.caller, job.dialect)
                elif not job.abandoned:
                    job.answer(memory.get(job.caller))
            except Exception as exc:  # the thread outlives a failed query: the memory is a hint
                log.warning("dialect_memory_failed", write=isinstance(job, _Write), error=str(exc))
                if isinstance(job, _Lookup):
                    job.answer(None)


__all__ = ["CLOSE_TIMEOUT_S", "LOOKUP_BUDGET_S", "MAX_PENDING", "ClosableDialectMemory", "DialectLookup",
           "DialectWorker", "DialectWriter"]
