"""Start a throwaway redis-server on a free loopback port (integration tests, benchmarks, demos).

No persistence (`--save '' --appendonly no`), its own temporary folder, killed on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

from ivr.acd.errors import BackendError


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def local_redis_server(start_timeout_s: float = 5.0) -> Iterator[str]:
    """Run redis-server for the `with` block; yields its URL (redis://127.0.0.1:PORT/0)."""
    program = redis_server_path()
    if program is None:
        raise BackendError("redis-server not installed (apt install redis-server)")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ivr-redis-")
    args = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + start_timeout_s
        while not _ping(port):  # a child process starting up: nothing to wait on but the port
            if proc.poll() is not None:
                raise BackendError(f"redis-server exited with code {proc.returncode} on port {port}")
            if time.monotonic() > give_up:
                raise BackendError(f"redis-server on port {port} did not answer in {start_timeout_s} s")
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
