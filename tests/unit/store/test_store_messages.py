"""Voice messages in the store: the WAV under the messages directory, the row, paging, retention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ivr.media.wav import load_telephony
from ivr.store import SqliteStore
from ivr.store.messages import MessageStore, NewMessage
from ivr.store.retention import purge_all

T0 = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)


def message(call_id: str, at: datetime, seconds: float = 1.5, queue: str = "general") -> NewMessage:
    audio = (np.sin(np.arange(round(seconds * 8000)) * 0.3) * 8000).astype(np.int16)
    return NewMessage(call_id=call_id, caller="13800138000", queue=queue, dialect="cmn", created_at=at,
                      audio=audio, ended_by="terminator", transcript="我要报案", confidence=0.7)


def test_a_message_is_a_wav_and_a_row(open_store: Callable[..., SqliteStore], tmp_path: Path) -> None:
    box = MessageStore(open_store(), tmp_path / "messages")
    stored = box.add(message("abc@host/x", T0))
    assert stored.path == "2026-12-06/abc_host_x-013000000000.wav"
    assert (stored.duration_s, stored.transcript, stored.confidence) == (1.5, "我要报案", 0.7)
    path = box.audio_path(stored)
    assert path is not None and len(load_telephony(path)) == 12000
    assert not list((tmp_path / "messages").rglob("*.part"))
    box.set_follow_up(stored.message_id, "queue:general")
    again = box.get(stored.message_id)
    assert again is not None and again.follow_up == "queue:general" and again.created_at == T0
    assert again.to_json()["audio"] == f"/api/messages/{stored.message_id}/audio"


def test_list_is_newest_first_pages_and_filters(open_store: Callable[..., SqliteStore], tmp_path: Path) -> None:
    box = MessageStore(open_store(), tmp_path)
    ids = [box.add(message(f"c{i}", T0 + timedelta(minutes=i), queue="claims" if i % 2 else "general")).message_id
           for i in range(5)]
    assert [m.message_id for m in box.page(limit=2)] == ids[::-1][:2]
    assert [m.message_id for m in box.page(limit=10, before_id=ids[2])] == [ids[1], ids[0]]
    assert [m.queue for m in box.page(queue="claims")] == ["claims", "claims"]
    assert box.get(9999) is None


def test_a_path_outside_the_directory_is_never_served(open_store: Callable[..., SqliteStore], tmp_path: Path) -> None:
    box = MessageStore(open_store(), tmp_path / "messages")
    stored = box.add(message("c1", T0))
    (tmp_path / "secret.wav").write_bytes(b"x")
    assert box.audio_path(replace(stored, path="../secret.wav")) is None


def test_retention_deletes_old_messages_with_their_files(
    open_store: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    store = open_store()
    box = MessageStore(store, tmp_path / "messages")
    old = box.add(message("old", T0 - timedelta(days=200)))
    new = box.add(message("new", T0))
    old_path = box.audio_path(old)
    assert old_path is not None
    counts = purge_all(store, T0 - timedelta(days=180), message_purgers=[box.purge])
    assert counts.messages == 1
    assert not old_path.exists() and box.get(old.message_id) is None
    assert box.audio_path(new) is not None


def test_a_survey_comment_keeps_its_kind_and_score(open_store: Callable[..., SqliteStore], tmp_path: Path) -> None:
    box = MessageStore(open_store(), tmp_path)
    plain = box.add(message("c1", T0))
    comment = box.add(replace(message("c2", T0), kind="survey", survey_score=2))
    assert (plain.kind, plain.survey_score) == ("message", None)
    assert (comment.kind, comment.survey_score) == ("survey", 2)
    assert comment.to_json()["kind"] == "survey" and [m.kind for m in box.between(T0, T0 + timedelta(1))] == [
        "survey", "message"]
