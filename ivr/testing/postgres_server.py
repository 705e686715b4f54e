"""A throwaway PostgreSQL cluster that a test can stop and start again on the same port and data.

`initdb` into a temporary folder (Debian's newest binaries, or `$IVR_PG_BIN`: see `ivr.testing.peers`),
user `ivr` trusted, no fsync, listening on 127.0.0.1 only, on a port from `ivr.testing.ports` (so it
is still ours when the server comes back). `stop()` and `start()` are a database restarting under its
supervisor: every connection is cut, and the same data answers again on the same address.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Literal

from ivr.errors import IvrError
from ivr.testing import peers
from ivr.testing.ports import free_port

StopMode = Literal["smart", "fast", "immediate"]


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
        self._options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                         f"-c max_connections={max_connections}")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "ivr", "-E", "UTF8", "--no-sync")
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
        """Start and wait until it accepts connections (`pg_ctl -w`)."""
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options, "-l", str(self.folder / "log"), "-w", "start")
        self.running = True

    def stop(self, mode: StopMode = "fast") -> None:
        """`fast` cuts every session and shuts down cleanly; `immediate` is a crash (recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.running:
            with contextlib.suppress(PostgresServerError):
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
