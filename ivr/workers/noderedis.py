"""The ACD log of a node of workers: a redis-server private to the node, on a Unix socket.

With `acd_backend: memory` one engine process keeps its ACD log in a list. Workers are processes, so
their one log must live outside them; rather than a second implementation of the log, the node runs
the Redis backend every cluster already uses (`ivr.acd.redis_backend`: ordered appends, snapshots,
leases of the workers as nodes) against a redis-server it owns: a Unix socket in a private folder
(mode 0700, no TCP port), no persistence (the state lives as long as the node, as the memory log did),
stopped with the node. The server dies with the supervisor (PR_SET_PDEATHSIG) and ignores the
terminal's Ctrl-C (its own session), so it outlives the workers' drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from pathlib import Path

import structlog

from ivr.errors import IvrError
from ivr.workers.lifetime import dies_with_parent

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 10.0


class NodeRedisError(IvrError):
    """redis-server is missing or did not start."""


def redis_server_program() -> str | None:
    return shutil.which("redis-server")


class NodeRedis:
    """One private redis-server: `await start()`, `url` for the workers, `await stop()`."""

    def __init__(self, program: str | None = None) -> None:
        found = program or redis_server_program()
        if found is None:
            raise NodeRedisError("redis-server not installed (apt install redis-server)")
        self._program = found
        self._folder = Path(tempfile.mkdtemp(prefix="ivr-node-acd-"))
        self.socket = self._folder / "acd.sock"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            self._program, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", str(self._folder), "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True, preexec_fn=dies_with_parent(signal.SIGTERM),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                break
            if await self._ping():
                log.info("node_acd_log_ready", socket=str(self.socket), pid=self._proc.pid)
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise NodeRedisError(f"redis-server did not answer on {self.socket} within {START_TIMEOUT_S:g} s")

    async def _ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket))
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await reader.readline()).startswith(b"+PONG")
        finally:
            writer.close()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._folder)


__all__ = ["NodeRedis", "NodeRedisError", "redis_server_program"]
