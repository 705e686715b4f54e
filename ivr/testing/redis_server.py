"""A throwaway redis-server on a free loopback port (integration tests, benchmarks, demos).

Its own temporary folder, killed on exit and with the process that started it (`ivr.testing.tethered`).
No persistence unless asked (`appendonly=True` gives an append-only file synced on every write).
`RedisServer.kill()` and `start()` restart it on the same port and folder, as a crashed Redis restarting
under a supervisor would.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

from ivr.errors import IvrError
from ivr.testing.ports import free_port
from ivr.testing.tethered import tethered


class RedisServerError(IvrError):
    """redis-server is missing, exited, or did not answer in time."""


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1; `url` stays the same across restarts."""

    def __init__(self, *, appendonly: bool = False, start_timeout_s: float = 5.0) -> None:
        program = redis_server_path()
        if program is None:
            raise RedisServerError("redis-server not installed (apt install redis-server)")
        self._program = program
        self.appendonly = appendonly
        self._start_timeout_s = start_timeout_s
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="ivr-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        args = [self._program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        proc = self._proc = subprocess.Popen(
            tethered([*args, "--dir", self.workdir]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        give_up = time.monotonic() + self._start_timeout_s
        while not _ping(self.port):  # a child process starting up: nothing to wait on but the port
            if proc.poll() is not None:
                raise RedisServerError(f"redis-server exited with code {proc.returncode} on port {self.port}")
            if time.monotonic() > give_up:
                raise RedisServerError(f"redis-server on port {self.port} did not answer in {self._start_timeout_s} s")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown save."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def local_redis_server(start_timeout_s: float = 5.0, *, appendonly: bool = False) -> Iterator[str]:
    """Run redis-server for the `with` block; yields its URL (redis://127.0.0.1:PORT/0)."""
    with running_redis_server(start_timeout_s, appendonly=appendonly) as server:
        yield server.url


@contextlib.contextmanager
def running_redis_server(start_timeout_s: float = 5.0, *, appendonly: bool = False) -> Iterator[RedisServer]:
    """Run redis-server for the `with` block; yields it (to kill and restart it)."""
    server = RedisServer(appendonly=appendonly, start_timeout_s=start_timeout_s)
    try:
        server.start()
        yield server
    finally:
        server.close()
