"""A test run killed before its clean-up leaves no redis-server or PostgreSQL behind (ivr.testing.tethered).

A separate Python process starts a real redis-server and a real PostgreSQL with the project's test
helpers, says their process ids, and is killed with SIGKILL, as a CI time-out or a second Ctrl-C would:
both servers must be gone soon after, their ports closed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ivr.testing import peers

pytestmark = pytest.mark.integration

GONE_WITHIN_S = 20.0
STARTER = """
from ivr.testing.postgres_server import PostgresServer
from ivr.testing.redis_server import RedisServer
redis, postgres = RedisServer(), PostgresServer()
redis.start()
postgres.start()
print(redis._proc.pid, redis.port, postgres._postmaster.pid, postgres.port, flush=True)
import time
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped by init) is gone too
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_servers_die_with_the_test_process_that_started_them() -> None:
    for peer in (peers.REDIS_SERVER, peers.POSTGRESQL):
        if peer.missing:
            pytest.skip(peer.reason)
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        redis_pid, redis_port, pg_pid, pg_port = (int(x) for x in starter.stdout.readline().split())
        assert _alive(redis_pid) and _alive(pg_pid)
        assert _listening(redis_port) and _listening(pg_port)
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
    give_up = time.monotonic() + GONE_WITHIN_S

    def lingering() -> bool:
        # A server child forked just before the kill holds the listening socket until it sees its
        # parent gone and exits, a moment after the postmaster itself.
        return any(_alive(pid) for pid in (redis_pid, pg_pid)) or any(map(_listening, (redis_port, pg_port)))

    while lingering() and time.monotonic() < give_up:
        time.sleep(0.1)
    assert not _alive(redis_pid), "redis-server outlived the killed test process"
    assert not _alive(pg_pid), "PostgreSQL outlived the killed test process"
    assert not _listening(redis_port), "redis-server's port still open"
    assert not _listening(pg_port), "PostgreSQL's port still open"
