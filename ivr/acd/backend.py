"""Where the ACD's commands are put in one order: the seam between the facade and its store.

The facade never shares mutable state between nodes: it appends each command to an ordered log and
applies the log, in order, to its own `Distributor`. A backend is that log. In process it is a
list (`MemoryBackend`); for several engine nodes it is a Redis stream (`RedisBackend`), whose
single order makes every update atomic and every node's state the same.

The log is bounded: a node saves a `Snapshot` of its distributor after some entry and the backend
drops the entries before the previous snapshot. A node starts from the latest snapshot and reads
the log after it; a node that fell behind the dropped part gets `LogTrimmed` and starts over from
the latest snapshot. A log that lost entries (Redis restarted empty, or lost its unsynced tail)
raises `LogReset`: the first node to `reseed` it makes its own copy of the state the new base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.acd.commands import LogEntry
from ivr.acd.errors import BackendError


@dataclass(slots=True, frozen=True)
class Snapshot:
    """The distributor's state after the entry `position` (text from `Distributor.snapshot`)."""

    position: str
    """Entry id the state includes ("" before the first entry)."""
    state: str


class StoreUnreachable(BackendError):
    """The log's store did not answer (Redis down or restarting): try again later."""


class LogTrimmed(BackendError):
    """Entries after the reader's position were dropped: start over from the latest snapshot."""


class LogReset(BackendError):
    """The log lost entries this node may have applied (a store restarted without them)."""


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
        """Entries after the one with id `after` (None: from the start); waits until there is one.
        Raises LogTrimmed or LogReset (above), BackendError when the store cannot be reached."""
        ...

    async def latest_snapshot(self) -> Snapshot | None: ...

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep `snapshot` (unless a later one is kept) and drop entries before the previous one."""
        ...

    async def reseed(self, state: str) -> bool:
        """After LogReset: make `state` the snapshot at the log's current end, unless another node
        did first (False). Either way the caller then starts over from `latest_snapshot`."""
        ...
