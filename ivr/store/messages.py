"""Voice messages in the store: a row per message in `messages` (migrations 0004, 0006), the audio in a WAV file.
Survey comments (a detractor's "why", `kind` survey) are kept the same way.

The files live under one configured directory, `<dir>/<yyyy-mm-dd>/<call-id>-<n>.wav`, written to a
temporary name and renamed, so a reader never sees half a file. The row keeps the path relative to
that directory: an audio request can only ever open a file inside it. Retention (`purge`) deletes old
rows and their files together, with the call records (issue 15: a message is personal data).

Messages are rare next to journey events (one per caller who could not reach anyone), so each
operation opens its own connection from the store's hooks and runs on the calling thread: the web
layer and the engine's box call these through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.media.wav import write_wav
from ivr.store.records import ts_parse, utc
from ivr.store.sqlstore import SqlStore

log = structlog.get_logger(__name__)

MAX_PAGE = 200
"""The most messages one list request returns."""
COLUMNS = (
    "id", "call_id", "caller", "queue", "dialect", "created_at", "path", "duration_s", "ended_by",
    "transcript", "confidence", "follow_up", "kind", "survey_score",
)
_COLS = ", ".join(COLUMNS)


@dataclass(slots=True, frozen=True)
class StoredMessage:
    message_id: int
    call_id: str
    caller: str
    queue: str
    dialect: str
    created_at: datetime
    path: str
    """Relative to the messages directory."""
    duration_s: float
    ended_by: str
    transcript: str
    confidence: float | None
    follow_up: str
    kind: str = "message"
    """`message` (left at a `message` node) or `survey` (a detractor's comment after the survey score)."""
    survey_score: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.message_id, "call_id": self.call_id, "caller": self.caller, "queue": self.queue,
            "dialect": self.dialect, "created_at": self.created_at.isoformat(), "duration_s": self.duration_s,
            "ended_by": self.ended_by, "transcript": self.transcript, "confidence": self.confidence,
            "follow_up": self.follow_up, "audio": f"/api/messages/{self.message_id}/audio", "kind": self.kind,
            "survey_score": self.survey_score,
        }


@dataclass(slots=True, frozen=True)
class NewMessage:
    call_id: str
    caller: str
    queue: str
    dialect: str
    created_at: datetime
    audio: NDArray[np.int16]
    ended_by: str
    transcript: str = ""
    confidence: float | None = None
    kind: str = "message"
    survey_score: int | None = None


def _row(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), ts_parse(row[5]), str(row[6]),
        float(row[7]), str(row[8]), str(row[9]), None if row[10] is None else float(row[10]), str(row[11]),
        str(row[12]), None if row[13] is None else int(row[13]),
    )


class MessageStore:
    """The `messages` table of `store` and the WAV files under `directory`."""

    def __init__(self, store: SqlStore, directory: Path) -> None:
        self._store = store
        self.directory = directory

    def _run(self, sql: str, params: Sequence[object], *, fetch: bool = False, write: bool = False) -> list[Any]:
        s = self._store
        conn = s._connect() if write else s._connect_reader()
        try:
            cur = conn.cursor()
            cur.execute(s._q(sql), tuple(s._enc(p) for p in params))
            rows = list(cur.fetchall()) if fetch else []
            if write:
                conn.commit()
            return rows
        except BaseException:
            if write:
                conn.rollback()
            raise
        finally:
            conn.close()

    def add(self, message: NewMessage) -> StoredMessage:
        """Write the audio file, then the row (a row never points at a missing file); blocking."""
        when = utc(message.created_at)
        relative = Path(when.strftime("%Y-%m-%d")) / f"{_safe(message.call_id)}-{when.strftime('%H%M%S%f')}.wav"
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        write_wav(partial, message.audio)
        os.replace(partial, target)
        duration_s = round(len(message.audio) / 8000, 3)
        rows = self._run(
            f"INSERT INTO messages ({_COLS.removeprefix('id, ')}) VALUES ({', '.join('?' * (len(COLUMNS) - 1))}) "
            "RETURNING id",
            (message.call_id, message.caller, message.queue, message.dialect, when, str(relative), duration_s,
             message.ended_by, message.transcript, message.confidence, "", message.kind, message.survey_score),
            fetch=True, write=True,
        )
        stored = self.get(int(rows[0][0]))
        assert stored is not None
        log.info("message_stored", message_id=stored.message_id, duration_s=duration_s, queue=message.queue)
        return stored

    def set_follow_up(self, message_id: int, follow_up: str) -> None:
        self._run("UPDATE messages SET follow_up = ? WHERE id = ?", (follow_up, message_id), write=True)

    def get(self, message_id: int) -> StoredMessage | None:
        rows = self._run(f"SELECT {_COLS} FROM messages WHERE id = ?", (message_id,), fetch=True)
        return _row(rows[0]) if rows else None

    def page(self, *, limit: int = 50, before_id: int | None = None, queue: str | None = None) -> list[StoredMessage]:
        """Newest first, at most `MAX_PAGE`; `before_id` pages on."""
        where: list[str] = []
        params: list[object] = []
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        if queue:
            where.append("queue = ?")
            params.append(queue)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        params.append(max(1, min(limit, MAX_PAGE)))
        rows = self._run(f"SELECT {_COLS} FROM messages {clause}ORDER BY id DESC LIMIT ?", params, fetch=True)
        return [_row(r) for r in rows]

    def between(self, since: datetime, until: datetime, *, limit: int = 5000) -> list[StoredMessage]:
        """Messages left in [since, until), newest first, at most `limit` (voice-of-the-customer reports)."""
        rows = self._run(
            f"SELECT {_COLS} FROM messages WHERE created_at >= ? AND created_at < ? ORDER BY created_at DESC, id DESC "
            "LIMIT ?", (utc(since), utc(until), max(1, limit)), fetch=True,
        )
        return [_row(r) for r in rows]

    def audio_path(self, message: StoredMessage) -> Path | None:
        """The message's file, if it is (still) there and inside the directory."""
        base = self.directory.resolve()
        path = (base / message.path).resolve()
        return path if path.is_relative_to(base) and path.is_file() else None

    def purge(self, before: datetime) -> int:
        """Delete messages left before `before`, rows and files (retention); how many; blocking."""
        rows = self._run("SELECT id, path FROM messages WHERE created_at < ?", (utc(before),), fetch=True)
        if not rows:
            return 0
        self._run("DELETE FROM messages WHERE created_at < ?", (utc(before),), write=True)
        base = self.directory.resolve()
        for _, relative in rows:
            path = (base / str(relative)).resolve()
            if path.is_relative_to(base):
                path.unlink(missing_ok=True)
        log.info("messages_purged", count=len(rows))
        return len(rows)


def _safe(text: str) -> str:
    """A call id as a file name part (Call-IDs may hold `@`, `/` and worse)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "call"


__all__ = ["MAX_PAGE", "MessageStore", "NewMessage", "StoredMessage"]
