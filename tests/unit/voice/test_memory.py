from __future__ import annotations

import pathlib
import sqlite3

from ivr.voice import DialectMemory, DialectSet, MemoryDialectMemory, SqliteDialectMemory, remembered_dialect


def test_sqlite_memory_remembers_and_replaces_per_caller(tmp_path: pathlib.Path) -> None:
    memory = SqliteDialectMemory(tmp_path / "var" / "ivr.db")
    assert isinstance(memory, DialectMemory)
    assert memory.get("13800138000") is None
    memory.set("13800138000", "nan")
    memory.set("13900139000", "yue")
    memory.set("13800138000", "wuu")
    assert memory.get("13800138000") == "wuu" and memory.get("13900139000") == "yue"
    memory.close()
    reopened = SqliteDialectMemory(tmp_path / "var" / "ivr.db")
    assert reopened.get("13800138000") == "wuu"
    reopened.close()


def test_sqlite_memory_shares_a_given_connection_and_creates_its_table_once(tmp_path: pathlib.Path) -> None:
    db = sqlite3.connect(tmp_path / "main.db")
    db.execute("CREATE TABLE calls (id TEXT)")
    first = SqliteDialectMemory(db)
    first.set("95519", "hak")
    second = SqliteDialectMemory(db)
    first.close()
    assert second.get("95519") == "hak"
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"calls", "caller_dialects"}
    db.close()


def test_remembered_dialect_ignores_anonymous_callers_and_unloaded_dialects(dialects: DialectSet) -> None:
    memory = MemoryDialectMemory()
    memory.set("1001", "nan")
    memory.set("1002", "klingon")
    memory.set("anonymous", "yue")
    assert remembered_dialect(memory, "1001", dialects) == "nan"
    assert remembered_dialect(memory, "1002", dialects) is None
    assert remembered_dialect(memory, "anonymous", dialects) is None
    assert remembered_dialect(memory, "1003", dialects) is None
