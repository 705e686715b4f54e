"""The shared backend: the ACD's command log is a Redis stream, so several engine nodes share
queues, agents and positions.

Every node appends its commands with XADD (Redis orders concurrent appends: that is the atomic
update) and applies the whole stream, in order, to its own distributor, so all nodes hold the same
state and make the same decisions. A node that dies loses nothing that is in Redis: the other nodes
stop seeing its heartbeats, and when its lease runs out they drop its callers (their calls died
with it) and move its callbacks to a live node. A node that starts late replays the stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ivr.acd.commands import LogEntry, decode_entry, encode_entry
from ivr.acd.errors import BackendError

_FIELD = "e"


class RedisBackend:
    def __init__(
        self, url: str, *, node_id: str, key: str = "ivr:acd", batch: int = 1000, block_ms: int = 5000
    ) -> None:
        self._url = url
        self._node_id = node_id
        self.stream = f"{key}:log"
        self._batch = batch
        self._block_ms = block_ms
        self._writer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def shared(self) -> bool:
        return True

    async def open(self) -> None:
        # Two connections: the reader blocks in XREAD while the writer appends.
        self._writer = aioredis.Redis.from_url(self._url)
        # XREAD blocks up to block_ms: the socket must wait longer than that (redis-py's default is 5 s).
        # No retries on it either: close() drops its connection to end a pending XREAD at once.
        self._reader = aioredis.Redis.from_url(
            self._url, socket_timeout=self._block_ms / 1000 + 5, retry=Retry(NoBackoff(), 0)
        )
        try:
            await self._writer.ping()
        except (RedisError, OSError) as exc:
            raise BackendError(f"redis at {self._url}: {exc}") from exc

    async def close(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                await client.aclose()
        self._writer = self._reader = None

    async def append(self, entry: LogEntry) -> None:
        if self._writer is None:
            raise BackendError(f"redis backend of node {self._node_id!r} is not open")
        try:
            await self._writer.xadd(self.stream, {_FIELD: encode_entry(entry)})
        except (RedisError, OSError) as exc:
            raise BackendError(f"redis at {self._url}: append to {self.stream}: {exc}") from exc

    async def read(self, after: str | None) -> list[LogEntry]:
        if self._reader is None:
            raise BackendError(f"redis backend of node {self._node_id!r} is not open")
        reply: Any = None
        while not reply:  # a long poll: XREAD returns at the first new entry, or empty after block_ms
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # the client swallowed our cancellation
            try:
                reply = await self._reader.xread({self.stream: after or "0-0"}, count=self._batch, block=self._block_ms)
            except (RedisError, OSError) as exc:
                raise BackendError(f"redis at {self._url}: read {self.stream}: {exc}") from exc
        entries: list[LogEntry] = []
        for _stream, items in reply or []:
            for raw_id, fields in items:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                entries.append(decode_entry(fields[_FIELD.encode()], entry_id))
        return entries
