"""The PostgreSQL backend (psycopg 3): records for an engine cluster, same interface as SQLite.

Each engine node passes its own `node_id` (default: the host name), so a restarting node marks only
*its* calls left in progress as `interrupted`, never a neighbour's live calls. Migrations run under a
transaction-scoped advisory lock, so nodes starting together apply each file once.
"""

from __future__ import annotations

import socket
from typing import Any

import psycopg

from ivr.clock import Clock
from ivr.store.errors import DatabaseUnreachable, MigrationError
from ivr.store.sqlstore import CREATE_SCHEMA_VERSION, Migration, SqlStore, check_version, version_row

MIGRATION_LOCK_KEY = 0x1B5_70BE
"""The advisory lock key that serializes migrations across nodes."""


def unreachable(dsn: str, exc: BaseException) -> DatabaseUnreachable:
    """The start-up error for a database that refused or never answered: which one, and libpq's reason."""
    from ivr.config import mask_url

    reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return DatabaseUnreachable(f"cannot connect to the database {mask_url(dsn)}: {reason}")


class PostgresStore(SqlStore):
    """Call records in PostgreSQL; `dsn` is a libpq connection string or URL."""

    dialect = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        node_id: str | None = None,
        holder: str | None = None,
        clock: Clock | None = None,
        connect_timeout_s: float = 10.0,
        read_only: bool = False,
    ) -> None:
        self.dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        super().__init__(node_id=node_id or socket.gethostname(), clock=clock, read_only=read_only, holder=holder)

    def __repr__(self) -> str:
        return f"PostgresStore(node_id={self.node_id!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, connect_timeout=max(1, int(self._connect_timeout_s)))

    def _connect_reader(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s))
        )

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.OperationalError)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _migrate(self, conn: Any, migrations: list[Migration]) -> int:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute(CREATE_SCHEMA_VERSION)
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0])
            for migration in check_version(current, migrations, "postgresql"):
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                            version_row(migration, self._clock.wall()),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"{migration.path}: {exc}") from exc
                current = migration.version
        conn.commit()
        return current
