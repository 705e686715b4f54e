"""Recordings are caller data: the retention purge deletes them with the calls (`ivr.store.retention`)."""

from __future__ import annotations

import pathlib
from datetime import datetime

import structlog

log = structlog.get_logger(__name__)


def purge_recordings(directory: pathlib.Path, before: datetime) -> int:
    """Delete recordings of calls started before `before` (by day folder, and by the file's time within
    the cut-off's own day); remove emptied day folders. Blocking; returns the files deleted."""
    if not directory.is_dir():
        return 0
    cut_day = before.strftime("%Y-%m-%d")
    cut_ts = before.timestamp()
    deleted = 0
    for day in sorted(d for d in directory.iterdir() if d.is_dir()):
        if day.name > cut_day:
            break
        for file in day.glob("*.wav"):
            if day.name < cut_day or file.stat().st_mtime < cut_ts:
                file.unlink(missing_ok=True)
                deleted += 1
        try:
            day.rmdir()  # only when empty
        except OSError:
            pass
    if deleted:
        log.info("recordings_purged", files=deleted, before=before.isoformat())
    return deleted


__all__ = ["purge_recordings"]
