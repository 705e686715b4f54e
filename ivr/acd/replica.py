"""This node's copy of the ACD state, kept in step with the shared log.

`Replica.send(command)` appends the command to the backend's log and waits until the apply task
has applied that entry to the local `Distributor` (the single writer); the events the entry
produced are the answer. The apply task hands every entry's events to the facade (`on_events`). A
timer task appends a `Tick` when the distributor's next deadline (ring timeout, wrap-up end, max
wait, night hours...) comes; with a shared backend a heartbeat task renews this node's lease.

Time: the replica takes the engine's one `Clock`. Alone, ACD time is `clock.now()`; on a shared log
it is the Unix time of `clock.wall()`, the only time every node agrees on. Either way the timer
waits with `clock.sleep_until`, so a test drives the whole ACD with a `FakeClock`.

The log is bounded (see `ivr.acd.backend`): on a shared log, the live node first by name saves a
snapshot every `snapshot_every` entries; a replica starts from the latest snapshot, and starts over
from it when it fell behind the trimmed part. When the store goes away (Redis restarting) the
replica keeps trying for `outage_s`; once the store is back it reads on or, if the log lost
entries, the first node back makes its own copy the new base (`reseed`) and every node starts over
from it. Commands not yet applied are then sent again (a repeat is recognised by its stamp and
skipped), and the facade is told (`on_start_over`) so it can queue again any caller the new base
lacks. Past `outage_s` the node stops (`on_failure`): callers reach the flow's fallback.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import structlog

from ivr.acd.backend import AcdBackend, LogReset, LogTrimmed, Snapshot, StoreUnreachable
from ivr.acd.commands import Command, Enqueue, Heartbeat, LogEntry, Tick
from ivr.acd.config import AcdConfig
from ivr.acd.distributor import Distributor
from ivr.acd.errors import BackendError
from ivr.acd.events import AcdEvent
from ivr.clock import Clock

log = structlog.get_logger(__name__)

SNAPSHOT_EVERY = 1000
"""Entries between two snapshots: the shared stream stays one to two periods long. A snapshot of
1,200 callers and 200 agents encodes in about 7 ms, so this costs the writer well under 0.01 ms
an entry."""

OUTAGE_S = 30.0
"""How long waiting callers are kept while the log's store is unreachable."""

_RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0)
"""Waits between attempts to reach the store again."""


class Replica:
    """The distributor of one node and the tasks that keep it in step with the log."""

    def __init__(
        self,
        config: AcdConfig,
        backend: AcdBackend,
        clock: Clock,
        *,
        on_events: Callable[[list[AcdEvent]], None],
        on_start_over: Callable[[Distributor, set[str]], None],
        on_failure: Callable[[BaseException], None],
        snapshot_every: int = SNAPSHOT_EVERY,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self.config = config
        self.backend = backend
        self.clock = clock
        self.snapshot_every = snapshot_every
        self.outage_s = outage_s
        self._on_events = on_events
        self._on_start_over = on_start_over
        self._on_failure = on_failure
        self._lease_s = config.lease_s if backend.shared else None
        self.core = Distributor(config, lease_s=self._lease_s)
        self._sender = f"{backend.node_id}/{secrets.token_hex(4)}"
        """This run of the node: command ids are `<sender>#<n>`, n rising (repeats are skipped)."""
        self._cids = itertools.count(1)
        self._pending: dict[str, tuple[LogEntry, asyncio.Future[list[AcdEvent]]]] = {}
        self._wake = asyncio.Event()
        self._armed: float | None = None
        self._timer_idle = asyncio.Event()
        """Set while the timer task sleeps on the distributor's current next deadline."""
        self.tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        """Commands sent on the node's own behalf (re-queueing, holding agents...), kept referenced."""
        self.after: str | None = None
        """Id of the last log entry applied (or the snapshot's position)."""
        self._unsnapshotted = 0
        """Entries applied since the latest snapshot this node saved or started from."""
        self.resyncs = 0
        """Times this node started over from a snapshot (fell behind the trim, or the log was reset)."""
        self.failure: BaseException | None = None
        self._closing = False

    @property
    def node_id(self) -> str:
        return self.backend.node_id

    def now(self) -> float:
        """ACD time (see the module docstring)."""
        return self.clock.wall().timestamp() if self.backend.shared else self.clock.now()

    def local_deadline(self) -> float | None:
        """The distributor's next deadline in `clock.now()` terms (None: nothing is due)."""
        deadline = self.core.next_deadline()
        return None if deadline is None else self.clock.now() + (deadline - self.now())

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.backend.open()
        await self._load_snapshot()
        node = self.node_id
        self.tasks = [
            asyncio.create_task(self._apply_loop(), name=f"acd-apply-{node}"),
            asyncio.create_task(self._timer_loop(), name=f"acd-timer-{node}"),
        ]
        if self.backend.shared:
            self.tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"acd-heartbeat-{node}"))
        await self.send(Heartbeat())

    async def close(self) -> None:
        self._closing = True
        tasks = [*self.tasks, *self._background]
        for task in tasks:
            task.cancel()
        await self.backend.close()  # also ends a read the backend may be blocked in
        for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, BackendError):
                log.warning("acd_task_failed_at_close", node=self.node_id, task=task.get_name(), error=repr(outcome))
        self.tasks = []

    async def settled(self) -> None:
        """Wait until every command this node sent has been applied and the timer sleeps on the
        next deadline (tests driving a FakeClock step from one settled point to the next)."""
        while True:
            await asyncio.sleep(0)
            if self.failure is not None:
                return
            if self._pending:
                await asyncio.wait([future for _entry, future in self._pending.values()])
            elif not self._timer_idle.is_set():
                await self._timer_idle.wait()
            else:
                await asyncio.sleep(0)
                if not self._pending and self._timer_idle.is_set():
                    return

    # --- sending --------------------------------------------------------------------------------

    async def send(self, command: Command, at: float | None = None) -> list[AcdEvent]:
        """Append `command` (stamped now, or at ACD time `at` if later) and return its events."""
        if self.failure is not None:
            raise BackendError(f"ACD node {self.node_id!r} stopped: {self.failure}")
        cid = f"{self._sender}#{next(self._cids)}"
        now = self.now()
        stamp = now if at is None else max(now, at)
        entry = LogEntry(
            node=self.node_id,
            cid=cid,
            now=stamp,
            wall=self.clock.wall() + timedelta(seconds=stamp - now),
            command=command,
        )
        future: asyncio.Future[list[AcdEvent]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = (entry, future)
        try:
            await self.backend.append(entry)
        except BaseException:
            self._pending.pop(cid, None)
            raise
        return await future

    def in_background(self, work: Coroutine[Any, Any, object], name: str) -> None:
        """Run a command the node sends on its own behalf; a failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("acd_background_failed", node=self.node_id, task=task.get_name(), error=str(task.exception()))

    async def _send_quietly(self, command: Command, at: float | None = None) -> None:
        """The node's own upkeep (ticks, heartbeats): a store outage delays it, never stops it."""
        try:
            await self.send(command, at)
        except BackendError as exc:
            if self.failure is not None:
                raise
            log.warning("acd_upkeep_delayed", node=self.node_id, command=type(command).__name__, error=str(exc))
            await self.clock.sleep_until(self.clock.now() + _RETRY_S[-1])

    # --- applying the log -----------------------------------------------------------------------

    async def _load_snapshot(self) -> None:
        """Start (over) from the latest snapshot, if the log has one."""
        snapshot = await self.backend.latest_snapshot()
        if snapshot is None:
            return
        self.core = Distributor.restore(self.config, snapshot.state, lease_s=self._lease_s)
        self.after = snapshot.position
        self._unsnapshotted = 0

    async def _apply_loop(self) -> None:
        try:
            while True:
                try:
                    entries = await self.backend.read(self.after)
                except BackendError as exc:
                    await self._recover(exc)
                    continue
                for entry in entries:
                    self.after = entry.entry_id
                    self._apply(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the node cannot go on: fail every waiter so calls reach a fallback
            if self._closing:
                return
            log.error("acd_apply_failed", node=self.node_id, exc_info=True)
            self.failure = exc
            for _entry, future in self._pending.values():
                if not future.done():
                    future.set_exception(BackendError(f"ACD node {self.node_id!r} stopped: {exc}"))
            self._on_failure(exc)

    async def _recover(self, exc: BackendError) -> None:
        """A read failed: start over from a snapshot if the log was trimmed past this node or lost
        entries; wait for the store to come back if it is unreachable; else the node stops."""
        if isinstance(exc, LogTrimmed | LogReset):
            reset = isinstance(exc, LogReset)
            log.warning("acd_log_reset" if reset else "acd_fell_behind_trimmed_log", node=self.node_id, error=str(exc))
            try:
                await self._start_over(reseed=reset)
                return
            except BackendError as again:
                exc = again
        if not isinstance(exc, StoreUnreachable):
            raise exc
        await self._outage(exc)

    async def _outage(self, exc: StoreUnreachable) -> None:
        """The store cannot be reached: keep trying for `outage_s` (callers keep waiting), then
        read on; the next read says whether the log is whole (LogReset otherwise)."""
        if self._closing:
            raise exc
        log.warning("acd_store_unreachable", node=self.node_id, error=str(exc))
        give_up = self.clock.now() + self.outage_s
        for attempt in itertools.count():
            await self.clock.sleep_until(self.clock.now() + _RETRY_S[min(attempt, len(_RETRY_S) - 1)])
            try:
                await self.backend.latest_snapshot()
            except BackendError:
                if self.clock.now() >= give_up:
                    raise
                continue
            log.info("acd_store_back", node=self.node_id)
            return

    async def _start_over(self, *, reseed: bool) -> None:
        """Restart from the latest snapshot: after falling behind the trim point, or (`reseed`)
        after the log lost entries, when the first node back makes its state the new base."""
        if reseed:
            saved = Distributor.restore(self.config, self.core.snapshot(), lease_s=self._lease_s)
            saved.renew_leases(self.now())  # nobody could renew a lease while the store was away
            if await self.backend.reseed(saved.snapshot()):
                log.warning("acd_log_reseeded", node=self.node_id, callers=len(saved.callers))
        old = self.core
        await self._load_snapshot()
        self.resyncs += 1
        for entry, _future in list(self._pending.values()):  # applied already? its stamp says so
            self.in_background(self.backend.append(entry), f"acd-resend-{entry.cid}")
        enqueueing = {e.command.call_id for e, _f in self._pending.values() if isinstance(e.command, Enqueue)}
        self._on_start_over(old, enqueueing)
        self._rewake()

    def _apply(self, entry: LogEntry) -> None:
        sender, _, number = entry.cid.rpartition("#")
        stamp = (sender, int(number)) if number.isdigit() else None
        events = self.core.apply(entry.command, node=entry.node, now=entry.now, wall=entry.wall, stamp=stamp)
        self._on_events(events)
        if entry.node == self.node_id:
            pending = self._pending.pop(entry.cid, None)
            if pending is not None and not pending[1].done():
                pending[1].set_result(events)
        self._unsnapshotted += 1
        if self._unsnapshotted >= self.snapshot_every and self._snapshots_here():
            self._unsnapshotted = 0
            snapshot = Snapshot(entry.entry_id, self.core.snapshot())
            self.in_background(self.backend.save_snapshot(snapshot), f"acd-snapshot-{entry.entry_id}")
        self._rewake()

    def _snapshots_here(self) -> bool:
        """On a shared log the live node first by name saves snapshots (every copy agrees on it);
        a log with one reader needs none."""
        return self.backend.shared and min(self.core.nodes, default=self.node_id) >= self.node_id

    # --- time -----------------------------------------------------------------------------------

    def _rewake(self) -> None:
        if self.core.next_deadline() != self._armed:
            self._timer_idle.clear()
            self._wake.set()

    async def _timer_loop(self) -> None:
        while True:
            self._wake.clear()
            armed = self._armed = self.core.next_deadline()
            deadline = self.local_deadline()
            if deadline is None:
                self._timer_idle.set()
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
            waker = asyncio.ensure_future(self._wake.wait())
            self._timer_idle.set()
            try:
                done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._timer_idle.clear()
                sleeper.cancel()
                waker.cancel()
            if sleeper in done and self.core.next_deadline() == armed:
                await self._send_quietly(Tick(), at=armed)

    async def _heartbeat_loop(self) -> None:
        period = self.config.lease_s / 3
        while True:
            await self.clock.sleep_until(self.clock.now() + period)
            await self._send_quietly(Heartbeat())
