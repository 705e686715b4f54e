"""Remembering each caller's dialect by their number, so a returning elderly caller is not asked again.

`DialectMemory` is the seam; `SqliteDialectMemory` keeps a `caller_dialects` table in a SQLite
database it is given (a path or an open connection: the store owns the main database, this module
only creates its own table, idempotently). Queries are single-row primary-key lookups.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol, runtime_checkable

from ivr.voice.dialects import DialectSet

_SCHEMA = """
CREATE TABLE IF NOT EXISTS caller_dialects (
    caller     TEXT PRIMARY KEY,
    dialect    TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


@runtime_checkable
class DialectMemory(Protocol):
    def get(self, caller: str) -> str | None:
        """The dialect last chosen from this number, or None."""
        ...

    def set(self, caller: str, dialect: str) -> None:
        """Remember the dialect the caller chose (replacing any earlier one)."""
        ...


class MemoryDialectMemory:
    """In-process memory, for tests and the simulator."""

    __slots__ = ("_by_caller",)

    def __init__(self) -> None:
        self._by_caller: dict[str, str] = {}

    def get(self, caller: str) -> str | None:
        return self._by_caller.get(caller)

    def set(self, caller: str, dialect: str) -> None:
        self._by_caller[caller] = dialect


class SqliteDialectMemory:
    """`caller_dialects(caller PRIMARY KEY, dialect, updated_at)` in the given SQLite database."""

    __slots__ = ("_db", "_owned")

    def __init__(self, db: str | Path | sqlite3.Connection) -> None:
        if isinstance(db, sqlite3.Connection):
            self._db, self._owned = db, False
        else:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
            self._db, self._owned = sqlite3.connect(str(db)), True
        with self._db:
            self._db.execute(_SCHEMA)

    def get(self, caller: str) -> str | None:
        row = self._db.execute("SELECT dialect FROM caller_dialects WHERE caller = ?", (caller,)).fetchone()
        return str(row[0]) if row else None

    def set(self, caller: str, dialect: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO caller_dialects (caller, dialect) VALUES (?, ?) ON CONFLICT(caller) "
                "DO UPDATE SET dialect = excluded.dialect, updated_at = CURRENT_TIMESTAMP",
                (caller, dialect),
            )

    def close(self) -> None:
        """Closes the connection if this object opened it."""
        if self._owned:
            self._db.close()


def remembered_dialect(memory: DialectMemory, caller: str, dialects: DialectSet) -> str | None:
    """The caller's remembered dialect if it is still a loaded pack (an anonymous caller has none)."""
    if not caller or caller.lower() == "anonymous":
        return None
    code = memory.get(caller)
    return code if code is not None and code in dialects else None
