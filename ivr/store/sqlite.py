"""The SQLite backend: the default, one file per engine, WAL journal, one writer thread.

Durability: WAL mode with `synchronous=FULL` (the default here) fsyncs the WAL on every commit, so a
committed call survives a kill -9 of the process *and* a power loss. `NORMAL` is also safe against a
kill -9 (the OS keeps written pages) but a power loss may roll back the last commits; it saves one
fsync per commit. The writer batches whatever is queued into one commit, so FULL costs one fsync per
batch, not per call.
"""

from __future__ import annotations

import enum
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.clock import Clock
from ivr.store.errors import MigrationError, StoreError
from ivr.store.records import ts_text
from ivr.store.sqlstore import CREATE_SCHEMA_VERSION, Migration, SqlStore, check_version, version_row


class Synchronous(enum.Enum):
    FULL = "FULL"
    NORMAL = "NORMAL"


class SqliteStore(SqlStore):
    """Call records in one SQLite file (WAL). `path` must be a file, not `:memory:`."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = Synchronous.FULL,
        node_id: str = "local",
        holder: str | None = None,
        clock: Clock | None = None,
        busy_timeout_s: float = 5.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        if read_only and not self.path.is_file():
            raise StoreError(f"no call-record database at {self.path}")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(node_id=node_id, clock=clock, read_only=read_only, holder=holder)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _open(self, *, autocommit: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode={'ro' if self.read_only else 'rwc'}",
            uri=True,
            timeout=self._busy_timeout_s,
            check_same_thread=False,
            isolation_level=None if autocommit else "DEFERRED",
        )
        if self.read_only:
            return conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous.value}")
        return conn

    def _connect(self) -> sqlite3.Connection:
        return self._open()

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._open(autocommit=True)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def is_transient(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def _q(self, sql: str) -> str:
        # SQLite matches a partial index (`WHERE breakpoint = 1`) only on the same literal, not TRUE.
        return sql.replace("= TRUE", "= 1")

    # `caller_dialects.updated_at` is SQLite's CURRENT_TIMESTAMP ("YYYY-MM-DD HH:MM:SS"), not our ISO
    # text: compare both as datetime() values, not as text.
    _dialect_before = "datetime(updated_at) < datetime(?)"

    def _enc(self, value: object) -> object:
        return ts_text(value) if isinstance(value, datetime) else value

    def _migrate(self, conn: Any, migrations: list[Migration]) -> int:
        conn.execute(CREATE_SCHEMA_VERSION)
        conn.commit()
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        for migration in check_version(int(current), migrations, str(self.path)):
            version, name, at = version_row(migration, self._clock.wall())
            script = (
                f"BEGIN IMMEDIATE;\n{migration.sql}\n;\n"
                "INSERT INTO schema_version (version, name, applied_at) "
                f"VALUES ({version}, '{name}', '{at}');\n"
                "COMMIT;"
            )
            try:
                conn.executescript(script)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise MigrationError(f"{migration.path}: {exc}") from exc
            current = version
        return int(current)
