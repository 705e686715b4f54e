"""`open_store`: a path opens SQLite, a postgresql:// URL PostgreSQL; an unreachable URL is a clear error
that names the database (password masked) and leaves no stray file behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ivr.store import DatabaseUnreachable, SqliteStore, open_store
from ivr.store.dialects import open_dialect_memory


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_postgresql_url_is_a_clear_error_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    port = closed_port()
    url = f"postgresql://ivr:s3cret@127.0.0.1:{port}/ivr"
    with pytest.raises(DatabaseUnreachable) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to the database postgresql://ivr:***@127.0.0.1:{port}/ivr: ")
    assert "s3cret" not in message and "refused" in message.lower()
    with pytest.raises(DatabaseUnreachable):
        open_dialect_memory(url)
    assert os.listdir(tmp_path) == []


def test_a_path_opens_sqlite_with_its_dialect_memory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ivr.db"
    store = open_store(path)
    try:
        assert isinstance(store, SqliteStore)
        memory = open_dialect_memory(path)
        memory.set("13800138000", "yue")
        assert memory.get("13800138000") == "yue"
        memory.close()
    finally:
        store.close()


def test_report_against_an_unreachable_database_exits_1_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from ivr.cli import main

    try:
        assert main(["report", "--db", f"postgresql://ivr@127.0.0.1:{closed_port()}/ivr"]) == 1
    finally:
        structlog.reset_defaults()
    out, err = capsys.readouterr()
    assert out == "" and "cannot connect to the database" in err
