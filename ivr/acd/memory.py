"""The in-process backend: the log is a list. Several `MemoryBackend`s may share one `MemoryLog`
to run more than one ACD node in a process (tests do)."""

from __future__ import annotations

import asyncio
import dataclasses

from ivr.acd.commands import LogEntry


class MemoryLog:
    __slots__ = ("entries", "_waiters")

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, entry: LogEntry) -> None:
        self.entries.append(dataclasses.replace(entry, entry_id=str(len(self.entries))))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def read(self, after: str | None) -> list[LogEntry]:
        start = 0 if after is None else int(after) + 1
        while start >= len(self.entries):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return self.entries[start:]


class MemoryBackend:
    """The embedded default: one node, state in this process."""

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
        return await self.log.read(after)
