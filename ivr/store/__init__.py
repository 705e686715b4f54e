"""Call records, journey events, survey results and the dispatch log: SQLite by default, PostgreSQL
for a cluster, both through `SqlStore` (a `JourneySink` whose writes never block the event loop)."""

from __future__ import annotations

from pathlib import Path

from ivr.clock import Clock
from ivr.store.errors import (
    BadQuery,
    BadSurveyScore,
    DatabaseUnreachable,
    MigrationError,
    StoreClosed,
    StoreError,
)
from ivr.store.records import (
    CSV_COLUMNS,
    CallDetail,
    CallPage,
    CallQuery,
    Committed,
    DispatchAction,
    DispatchEntry,
    detail_to_json,
    dispatch_to_json,
    event_to_json,
    record_to_csv_row,
    record_to_json,
)
from ivr.store.reports import SERVICE_LEVEL_S, BreakpointCount, Summary, parse_time
from ivr.store.sqlite import SqliteStore, Synchronous
from ivr.store.sqlstore import SqlStore

__all__ = [
    "CSV_COLUMNS",
    "SERVICE_LEVEL_S",
    "BadQuery",
    "BadSurveyScore",
    "BreakpointCount",
    "CallDetail",
    "CallPage",
    "CallQuery",
    "Committed",
    "DatabaseUnreachable",
    "DispatchAction",
    "DispatchEntry",
    "MigrationError",
    "SqlStore",
    "SqliteStore",
    "StoreClosed",
    "StoreError",
    "Summary",
    "Synchronous",
    "detail_to_json",
    "dispatch_to_json",
    "event_to_json",
    "open_store",
    "parse_time",
    "record_to_csv_row",
    "record_to_json",
]


def open_store(
    target: str | Path, *, clock: Clock | None = None, node_id: str | None = None, read_only: bool = False,
    holder: str | None = None,
) -> SqlStore:
    """A store for `target`: a `postgresql://` URL opens PostgreSQL (psycopg), anything else is a
    SQLite file path. `read_only` (for reports) neither migrates nor marks calls interrupted. `holder`:
    the engine process writing, when it is one worker of the node `node_id` (default: the node)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        import psycopg

        from ivr.store.postgres import PostgresStore, unreachable

        try:
            return PostgresStore(text, clock=clock, node_id=node_id, read_only=read_only, holder=holder)
        except psycopg.OperationalError as exc:
            raise unreachable(text, exc) from None
    return SqliteStore(text, clock=clock, node_id=node_id or "local", read_only=read_only, holder=holder)
