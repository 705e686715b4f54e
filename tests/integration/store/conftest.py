"""A throwaway PostgreSQL 15 cluster (Debian's binaries) for the store tests, and the `open_store`
fixture that gives each test its own fresh database in it."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from ivr.clock import FakeClock
from ivr.testing import peers

_db_numbers = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as a non-root user")
    return [runuser, "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    found = peers.POSTGRESQL.path  # Debian's newest /usr/lib/postgresql/*/bin, or $IVR_pg_bin
    if found is None:
        pytest.skip(peers.POSTGRESQL.reason)
    pg_bin = Path(found)
    base = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run(
        _as_postgres(
            [str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "ivr", "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [str(pg_bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://ivr@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres_dsn: str) -> str:
    import psycopg

    name = f"ivr_test_{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def open_store(fresh_database: str) -> Iterator[Callable[..., object]]:
    from ivr.store.postgres import PostgresStore

    opened: list[PostgresStore] = []

    def factory(node_id: str = "node-1") -> PostgresStore:
        store = PostgresStore(fresh_database, node_id=node_id, clock=FakeClock())
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo a structlog configuration another test left behind (`ivr.cli.main` binds the captured,
    since closed, stderr), so this package's log lines cannot fail on a closed stream."""
    structlog.reset_defaults()

