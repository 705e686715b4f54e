from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from ivr.clock import FakeClock
from ivr.store import SqliteStore


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[..., SqliteStore]]:
    """Opens the same SQLite file each call (to test reopening); closes them all after the test."""
    opened: list[SqliteStore] = []

    def factory(node_id: str = "local") -> SqliteStore:
        store = SqliteStore(tmp_path / "calls.db", node_id=node_id, clock=FakeClock())
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

