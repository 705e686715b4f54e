"""Where the ACD's commands are put in one order: the seam between the facade and its store.

The facade never shares mutable state between nodes: it appends each command to an ordered log and
applies the log, in order, to its own `Distributor`. A backend is that log. In process it is a
list (`MemoryBackend`); for several engine nodes it is a Redis stream (`RedisBackend`), whose
single order makes every update atomic and every node's state the same.
"""

from __future__ import annotations

from typing import Protocol

from ivr.acd.commands import LogEntry


class AcdBackend(Protocol):
    @property
    def node_id(self) -> str:
        """This engine node's id; callers it queues carry it."""
        ...

    @property
    def shared(self) -> bool:
        """True when other nodes read the same log (leases and heartbeats are then enforced)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, entry: LogEntry) -> None:
        """Add an entry at the end of the log (atomically: concurrent appends are ordered)."""
        ...

    async def read(self, after: str | None) -> list[LogEntry]:
        """Entries after the one with id `after` (None: from the start); waits until there is one."""
        ...
