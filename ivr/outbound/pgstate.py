"""Campaign state in PostgreSQL (the engine's `db: postgresql://...`), shared by a cluster's nodes.

The same tables and SQL as the SQLite state (`ivr.outbound.state`), in the call records' database.
Every node serves the outbound API over it (targets added, pauses, progress); one node at a time
leads and dials. The lead is a session advisory lock held on a connection of its own: it goes with
the node (a node that stops unlocks it; one that dies closes the connection, and PostgreSQL frees the
lock as soon as its server process sees that), so no lease has to run out. The node that takes the lead
closes the attempts the last leader left `dialing` as interrupted; a claim is conditional on the attempt
number, so even a leader that lost its connection without noticing cannot dial an attempt another node
has claimed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
import structlog

from ivr.config import mask_url
from ivr.outbound.errors import OutboundError
from ivr.outbound.state import SCHEMA, Executor, SqlCampaignState

log = structlog.get_logger(__name__)

SCHEMA_LOCK_KEY = 0x1B5_0B01
"""Advisory lock serializing the schema's creation (nodes starting together) and target inserts."""
LEAD_LOCK_KEY = 0x1B5_0B02
"""Advisory lock whose holder dials the campaigns."""


class PostgresCampaignStore(SqlCampaignState):
    """Campaign state in PostgreSQL; `dsn` is a libpq URL or connection string."""

    shared = True

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0) -> None:
        super().__init__()
        self.dsn = dsn
        self._timeout_s = max(1, int(connect_timeout_s))
        try:
            self._conn = self._connect()
        except psycopg.OperationalError as exc:  # `ivr campaign export --db` or start-up: a message, no traceback
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise OutboundError(f"cannot connect to the database {mask_url(dsn)}: {reason}") from exc
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            self._conn.execute(SCHEMA.encode())
        self._lead_conn: psycopg.Connection[Any] | None = None
        self._leading = False

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=self._timeout_s)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Executor]:
        with self._lock, self._conn.transaction():
            yield self._conn

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql.encode(), args).fetchall()]

    def _before_insert(self, conn: Executor) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))

    def lead(self) -> bool:
        """Hold the lead, or take it if it is free; False while another node has it or the database is
        unreachable (a leader that loses its connection has lost the lead with it)."""
        with self._lock:
            try:
                if self._lead_conn is None or self._lead_conn.closed:
                    self._lead_conn = self._connect()
                    self._leading = False
                if self._leading:
                    self._lead_conn.execute("SELECT 1")
                    return True
                row = self._lead_conn.execute("SELECT pg_try_advisory_lock(%s)", (LEAD_LOCK_KEY,)).fetchone()
                self._leading = bool(row and row[0])
                return self._leading
            except psycopg.OperationalError as exc:
                if self._leading:
                    log.warning("outbound_lead_lost", error=str(exc).strip())
                if self._lead_conn is not None:
                    self._lead_conn.close()
                self._lead_conn, self._leading = None, False
                return False

    def close(self) -> None:
        with self._lock:
            if self._lead_conn is not None:
                # Unlock before closing: a closed connection's advisory lock is only freed when its server
                # process notices and exits, a moment later, and a successor asking then would be refused.
                if self._leading and not self._lead_conn.closed:
                    with suppress(psycopg.Error):
                        self._lead_conn.execute("SELECT pg_advisory_unlock(%s)", (LEAD_LOCK_KEY,))
                self._lead_conn.close()
                self._lead_conn, self._leading = None, False
            self._conn.close()


__all__ = ["LEAD_LOCK_KEY", "PostgresCampaignStore"]
