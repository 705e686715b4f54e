"""The in-process backend: the log is a list. Several `MemoryBackend`s may share one `MemoryLog`
to run more than one ACD node in a process (tests do)."""

from __future__ import annotations

import asyncio
import dataclasses

from ivr.acd.backend import LogTrimmed, Snapshot
from ivr.acd.commands import LogEntry


class MemoryLog:
    __slots__ = ("entries", "base", "snapshot", "_waiters")

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.base = 0
        """Position of `entries[0]`: entries before it were dropped behind a snapshot."""
        self.snapshot: Snapshot | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, entry: LogEntry) -> None:
        self.entries.append(dataclasses.replace(entry, entry_id=str(self.base + len(self.entries))))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def read(self, after: str | None) -> list[LogEntry]:
        start = 0 if not after else int(after) + 1
        if start < self.base:
            raise LogTrimmed(f"memory log: entries {start}..{self.base - 1} were dropped behind a snapshot")
        while start >= self.base + len(self.entries):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return self.entries[start - self.base :]

    def forget(self, through: str) -> None:
        """Drop entries up to the one with id `through` (its only reader applied them)."""
        keep_from = int(through) + 1
        del self.entries[: keep_from - self.base]
        self.base = keep_from

    def save_snapshot(self, snapshot: Snapshot) -> None:
        previous = self.snapshot
        if previous is not None and int(previous.position or -1) >= int(snapshot.position or -1):
            return
        self.snapshot = snapshot
        if previous is not None and previous.position:
            keep_from = int(previous.position)
            del self.entries[: keep_from - self.base]
            self.base = keep_from


class MemoryBackend:
    """The embedded default: one node, state in this process. Alone on its log (no `log` given),
    it forgets each entry once read: the node is its only reader, so the log stays empty, with no
    snapshot needed. On a shared `MemoryLog` it keeps entries and trims behind snapshots."""

    def __init__(self, node_id: str = "local", log: MemoryLog | None = None) -> None:
        self._node_id = node_id
        self._shared = log is not None
        self.log = log if log is not None else MemoryLog()

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def shared(self) -> bool:
        return self._shared

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def append(self, entry: LogEntry) -> None:
        self.log.append(entry)

    async def read(self, after: str | None) -> list[LogEntry]:
        entries = await self.log.read(after)
        if not self._shared:
            self.log.forget(entries[-1].entry_id)
        return entries

    async def latest_snapshot(self) -> Snapshot | None:
        return self.log.snapshot

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        self.log.save_snapshot(snapshot)

    async def reseed(self, state: str) -> bool:
        return False  # a list in this process cannot lose entries
