"""A throwaway PostgreSQL cluster that a test can stop and start again on the same port and data.

`initdb` into a temporary folder (Debian's newest binaries, or `$IVR_PG_BIN`: see `ivr.testing.peers`),
user `ivr` trusted, no fsync, listening on 127.0.0.1 only, on a port from `ivr.testing.ports` (so it
is still ours when the server comes back). `stop()` and `start()` are a database restarting under its
supervisor: every connection is cut, and the same data answers again on the same address.

The postmaster runs as our child (not daemonised by `pg_ctl`), tethered to the process that started it
(`ivr.testing.tethered`): a test run killed before its clean-up leaves no PostgreSQL running.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Literal

from ivr.errors import IvrError
from ivr.testing import peers
from ivr.testing.ports import free_port
from ivr.testing.tethered import tethered

StopMode = Literal["smart", "fast", "immediate"]
# The postmaster's shutdown modes are signals (what `pg_ctl stop -m` sends).
STOP_SIGNALS: dict[StopMode, signal.Signals] = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
                                                "immediate": signal.SIGQUIT}
WAIT_S = 120.0


class PostgresServerError(IvrError):
    """PostgreSQL is missing, or would not initialise, start or stop."""


def as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresServerError("running as root without runuser: cannot start PostgreSQL as a non-root user")
    return [runuser, "-u", "postgres", "--", *cmd]


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1; `dsn` (its `postgres` database) stays the same across restarts."""

    def __init__(self, *, max_connections: int = 200) -> None:
        found = peers.POSTGRESQL.path
        if found is None:
            raise PostgresServerError(peers.POSTGRESQL.reason)
        self._bin = pathlib.Path(found)
        self.port = free_port()
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self._options = ["-p", str(self.port), "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1",
                         "-c", "fsync=off", "-c", f"max_connections={max_connections}"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "ivr", "-E", "UTF8", "--no-sync")
        self._postmaster: subprocess.Popen[bytes] | None = None
        self.running = False

    @property
    def dsn(self) -> str:
        return f"postgresql://ivr@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """Create database `name`; its DSN."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn.rsplit("/", 1)[0] + "/" + name

    def start(self) -> None:
        """Start and wait until it accepts connections (what `pg_ctl -w` waits for: postmaster.pid says ready)."""
        command = [str(self._bin / "postgres"), "-D", str(self.data), *self._options]
        user = "postgres" if os.geteuid() == 0 else None
        with (self.folder / "log").open("ab") as log_file:
            self._postmaster = subprocess.Popen(tethered(command, user=user), stdin=subprocess.DEVNULL,
                                                stdout=log_file, stderr=subprocess.STDOUT)
        self.running = True
        give_up = time.monotonic() + WAIT_S
        while not self._ready():  # a child process starting up: nothing to wait on but its pid file
            if self._postmaster.poll() is not None or time.monotonic() > give_up:
                self.close()
                raise PostgresServerError(f"postgres did not start on port {self.port}:\n{self.log()[-2000:]}")
            time.sleep(0.02)

    def _ready(self) -> bool:
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) > 7 and lines[7].strip() == "ready"

    def stop(self, mode: StopMode = "fast") -> None:
        """`fast` cuts every session and shuts down cleanly; `immediate` is a crash (recovery on start)."""
        if self._postmaster is not None:
            self._postmaster.send_signal(STOP_SIGNALS[mode])
            try:
                self._postmaster.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self._postmaster.kill()
                self._postmaster.wait()
            self._postmaster = None
        self.running = False

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(as_postgres_user([str(self._bin / program), *args]), capture_output=True,
                              text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise PostgresServerError(f"{program} {args[0] if args else ''} failed ({done.returncode}): "
                                      f"{done.stderr.strip()[-2000:]}\n{self.log()[-2000:]}")


@contextlib.contextmanager
def running_postgres_server(*, max_connections: int = 200) -> Iterator[PostgresServer]:
    """A started PostgreSQL for the `with` block (to stop and start again); removed on exit."""
    server = PostgresServer(max_connections=max_connections)
    try:
        server.start()
        yield server
    finally:
        server.close()
