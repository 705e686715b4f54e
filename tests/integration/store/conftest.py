"""A throwaway PostgreSQL 15 cluster (Debian's binaries) for the store tests, and the `open_store`
fixture that gives each test its own fresh database in it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
import structlog

from ivr.clock import FakeClock
from ivr.testing import peers
from tests.integration.cluster.cluster import new_database, running_postgres

_db_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    if peers.POSTGRESQL.missing:
        pytest.skip(peers.POSTGRESQL.reason)
    with running_postgres() as dsn:  # initdb + pg_ctl as the `postgres` user when run as root
        yield dsn


@pytest.fixture
def fresh_database(postgres_dsn: str) -> str:

    return new_database(postgres_dsn, f"ivr_test_{os.getpid()}_{next(_db_numbers)}")


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

