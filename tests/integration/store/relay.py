"""A TCP relay on loopback that can make a database unreachable by timeout rather than by refusal.

`FreezableRelay(upstream)` listens on 127.0.0.1 and relays each connection to `upstream`. `freeze()` makes
it a host that stopped answering: connections are still accepted (the kernel completes the handshake)
and nothing is refused or reset, but no byte goes through either way, so a client waits for its own
timeout (a connect timeout, or forever for a query on an open connection). `thaw()` lets the held bytes
and connections through again: a database that was merely slow. The relay runs its own event loop on a
thread, so a test may block on the engine's start-up while the engine connects through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from ivr.testing.ports import free_port

CHUNK = 65536


class FreezableRelay:
    """127.0.0.1:`port` → `upstream`; `freeze()`/`thaw()` stop and resume every byte (see the module)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._open.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._started = threading.Event()
        self.held = threading.Event()
        """Set when, frozen, the relay held a client's bytes or connection (the client now waits)."""
        self._thread = threading.Thread(target=self._run, name="freezable-relay", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the relay did not start")

    def dsn(self, database_dsn: str) -> str:
        """`database_dsn` (a URL on the upstream's host and port) pointed at this relay instead."""
        host, port = self.upstream
        return database_dsn.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.port}/")

    def freeze(self) -> None:
        self._loop.call_soon_threadsafe(self._open.clear)

    def thaw(self) -> None:
        self._loop.call_soon_threadsafe(self._open.set)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _note_held(self) -> None:
        if not self._open.is_set():
            self.held.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in self._writers:
                writer.close()
            self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            self._note_held()
            await self._open.wait()  # accepted, never answered while frozen
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                self._note_held()
                await self._open.wait()  # frozen: the bytes wait here, and TCP flow control does the rest
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


@contextlib.contextmanager
def freezable_relay(upstream: tuple[str, int]) -> Iterator[FreezableRelay]:
    relay = FreezableRelay(upstream)
    try:
        yield relay
    finally:
        relay.close()
