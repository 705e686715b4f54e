"""The shared backend: the ACD's command log is a Redis stream, so several engine nodes share
queues, agents and positions.

Every node appends its commands with XADD (Redis orders concurrent appends: that is the atomic
update) and applies the whole stream, in order, to its own distributor, so all nodes hold the same
state and make the same decisions. A node that dies loses nothing that is in Redis: the other nodes
stop seeing its heartbeats, and when its lease runs out they drop its callers (their calls died
with it) and move its callbacks to a live node.

The stream is bounded: `<key>:snapshot` (a hash: position, state, trimmed) holds the latest
snapshot, and saving one trims the stream to the previous snapshot's position, so a node that is
a little behind still reads on while the stream stays about two snapshot periods long. A new node
starts from the snapshot. Each read is one script that also returns the trim point and the log's
epoch (`<key>:epoch`, a token set when the log is created): a reader behind the trim point gets
`LogTrimmed`, and a reader whose epoch is gone or changed (Redis restarted empty) gets `LogReset`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from ivr.acd.backend import LogReset, LogTrimmed, Snapshot, StoreUnreachable
from ivr.acd.commands import LogEntry, decode_entry, encode_entry
from ivr.acd.errors import BackendError

_FIELD = "e"
WRITER_CONNECTIONS = 8
"""Connections for a node's writes (appends, one at a time, and snapshots). More requests in flight wait for
one: redis-py's default pool instead fails the 101st at once with "Too many connections"."""
WRITER_WAIT_S = 10.0
"""How long a write may wait for a free connection before the store counts as unreachable."""

# KEYS: stream, snapshot hash, epoch. ARGV: after ("" for the start), count.
_READ = """
local trimmed = redis.call('HGET', KEYS[2], 'trimmed')
local epoch = redis.call('GET', KEYS[3])
local start = '-'
if ARGV[1] ~= '' then start = '(' .. ARGV[1] end
local items = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', tonumber(ARGV[2]))
local last = ''
if #items == 0 then
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #tail > 0 then last = tail[1][1] end
end
return {epoch or '', trimmed or '', items, last}
"""

_ID_LESS = """
local function id_less(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""

# KEYS: stream, snapshot hash. ARGV: position, state, read batch. Keeps only a later snapshot;
# trims the stream to the snapshot it replaces, if at least a read batch of entries stays after it.
_SAVE = _ID_LESS + """
local previous = redis.call('HGET', KEYS[2], 'position')
if previous and not id_less(previous, ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'position', ARGV[1], 'state', ARGV[2])
local batch = tonumber(ARGV[3])
if previous and #redis.call('XRANGE', KEYS[1], previous, '+', 'COUNT', batch) >= batch then
  redis.call('XTRIM', KEYS[1], 'MINID', previous)
  redis.call('HSET', KEYS[2], 'trimmed', previous)
end
return 1
"""

# KEYS: stream, snapshot hash, epoch. ARGV: the epoch the caller knew, new epoch, state.
_RESEED = """
local epoch = redis.call('GET', KEYS[3])
if epoch and epoch ~= ARGV[1] then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local position = '0-0'
if #last > 0 then position = last[1][1] end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'position', position, 'state', ARGV[3], 'trimmed', position)
return 1
"""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: list[bytes]) -> bytes:
    return dict(zip(fields[::2], fields[1::2], strict=True))[_FIELD.encode()]


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisBackend:
    def __init__(
        self, url: str, *, node_id: str, key: str = "ivr:acd", batch: int = 1000, block_ms: int = 5000
    ) -> None:
        self._url = url
        self._node_id = node_id
        self.stream = f"{key}:log"
        self.snapshot_key = f"{key}:snapshot"
        self.epoch_key = f"{key}:epoch"
        self._batch = batch
        self._block_ms = block_ms
        self._writer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._epoch = ""
        """The log's epoch this node's state belongs to ("" before open)."""
        self._shas: dict[str, str] = {}
        self._appending = asyncio.Lock()
        """One append at a time, in the order they were asked for (asyncio.Lock is FIFO): the distributor
        drops a command numbered at or below the last one applied from its sender as a repeat, so two
        commands of one node racing over two connections must not reach the stream swapped. Found by
        bench/cluster.py: 100 concurrent enqueues of one node lost 31 callers without a word."""
        self._verify = True
        """Read through the checking script next (at start, after an error, after a full batch)."""

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def shared(self) -> bool:
        return True

    async def open(self) -> None:
        # Two connections: the reader blocks in XREAD while the writer appends.
        self._writer = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            self._url, max_connections=WRITER_CONNECTIONS, timeout=WRITER_WAIT_S))
        # XREAD blocks up to block_ms: the socket must wait longer than that (redis-py's default is 5 s).
        # No retries on it either: close() drops its connection to end a pending XREAD at once.
        self._reader = aioredis.Redis.from_url(
            self._url, socket_timeout=self._block_ms / 1000 + 5, retry=Retry(NoBackoff(), 0)
        )
        try:
            await self._writer.set(self.epoch_key, secrets.token_hex(8), nx=True)
            self._epoch = _text(await self._writer.get(self.epoch_key))
        except (RedisError, OSError) as exc:
            raise BackendError(f"redis at {self._url}: {exc}") from exc

    async def close(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                await client.aclose()
        self._writer = self._reader = None

    def _client(self, client: aioredis.Redis | None) -> aioredis.Redis:
        if client is None:
            raise BackendError(f"redis backend of node {self._node_id!r} is not open")
        return client

    def _failed(self, what: str, exc: BaseException) -> StoreUnreachable:
        return StoreUnreachable(f"redis at {self._url}: {what}: {exc}")

    async def append(self, entry: LogEntry) -> None:
        try:
            async with self._appending:
                await self._client(self._writer).xadd(self.stream, {_FIELD: encode_entry(entry)})
        except (RedisError, OSError) as exc:
            raise self._failed(f"append to {self.stream}", exc) from exc

    async def read(self, after: str | None) -> list[LogEntry]:
        reader = self._client(self._reader)
        while True:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # the client swallowed our cancellation
            try:
                if self._verify:
                    entries = await self._read_checked(reader, after)
                    self._verify = False
                    if entries:
                        return entries
                entries = await self._read_fast(reader, after)
            except (RedisError, OSError) as exc:
                self._verify = True  # after an outage the log may have lost or reset entries
                raise self._failed(f"read {self.stream}", exc) from exc
            if entries:
                return entries

    async def _read_fast(self, reader: aioredis.Redis, after: str | None) -> list[LogEntry]:
        """A long-polling XREAD, one round trip, as cheap as before the log was bounded.

        Fewer than a batch of entries are the successors of `after`: saving a snapshot trims only
        when at least a batch of entries stays after the trim point (`_SAVE`), so a reader behind
        the trim point would get a full batch. A full batch, then, is read again through the
        checking script; a reset Redis drops the connection, and the error sends the next read
        through the script too."""
        reply: Any = await reader.xread({self.stream: after or "0-0"}, count=self._batch, block=self._block_ms)
        entries = [
            decode_entry(fields[_FIELD.encode()], _text(raw_id))
            for _stream, items in reply or []
            for raw_id, fields in items
        ]
        if len(entries) >= self._batch:
            self._verify = True
            return []
        return entries

    async def _read_checked(self, reader: aioredis.Redis, after: str | None) -> list[LogEntry]:
        """Entries after `after`, with the checks that no entry was trimmed or lost before them."""
        keys = (self.stream, self.snapshot_key, self.epoch_key)
        epoch, trimmed, items, last = await self._script(reader, _READ, keys, (after or "", self._batch))
        epoch, trimmed, last = _text(epoch), _text(trimmed), _text(last)
        if epoch != self._epoch:
            raise LogReset(f"redis at {self._url}: the ACD log was reset (epoch {epoch or 'gone'})")
        if after and last and _id_key(last) < _id_key(after):
            raise LogReset(f"redis at {self._url}: the ACD log lost its entries after {last} (had {after})")
        if trimmed and (not after or _id_key(after) < _id_key(trimmed)):
            raise LogTrimmed(f"redis at {self._url}: entries after {after} were trimmed (to {trimmed})")
        # From a script, an entry's fields come as a flat [name, value, ...] list.
        return [decode_entry(_field(fields), _text(raw_id)) for raw_id, fields in items]

    async def _script(self, client: aioredis.Redis, source: str, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """Run a Lua script by its SHA (loaded again if Redis restarted and forgot it)."""
        sha = self._shas.get(source)
        if sha is not None:
            try:
                return await client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
        self._shas[source] = await client.script_load(source)
        return await client.evalsha(self._shas[source], len(keys), *keys, *args)

    async def latest_snapshot(self) -> Snapshot | None:
        try:
            saved = await self._client(self._writer).hmget(self.snapshot_key, ["position", "state"])
        except (RedisError, OSError) as exc:
            raise self._failed(f"read {self.snapshot_key}", exc) from exc
        position, state = saved
        if position is None or state is None:
            return None
        return Snapshot(_text(position), _text(state))

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        keys = (self.stream, self.snapshot_key)
        try:
            args = (snapshot.position, snapshot.state, self._batch)
            await self._script(self._client(self._writer), _SAVE, keys, args)
        except (RedisError, OSError) as exc:
            raise self._failed(f"save {self.snapshot_key}", exc) from exc

    async def reseed(self, state: str) -> bool:
        new_epoch = secrets.token_hex(8)
        keys = (self.stream, self.snapshot_key, self.epoch_key)
        try:
            won = await self._script(self._client(self._writer), _RESEED, keys, (self._epoch, new_epoch, state))
            self._epoch = _text(await self._client(self._writer).get(self.epoch_key))
        except (RedisError, OSError) as exc:
            raise self._failed(f"reseed {self.snapshot_key}", exc) from exc
        return bool(won)

    async def stream_length(self) -> int:
        """Entries kept in the stream now (it is bounded by the snapshots' trimming)."""
        try:
            return int(await self._client(self._writer).xlen(self.stream))
        except (RedisError, OSError) as exc:
            raise self._failed(f"length of {self.stream}", exc) from exc
