"""GET /api/messages and /api/messages/{id}/audio: supervisors only, paged, audio only from the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import ADMIN, SUPERVISOR, VIEWER, WALL, Rig, assert_spec_matches_routes, bearer

from ivr.store.messages import MessageStore, NewMessage
from ivr.web.messages import add_message_routes

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def messages(rig: Rig, tmp_path: Path) -> MessageStore:
    return MessageStore(rig.store, tmp_path / "messages")


@pytest.fixture
async def served(app: web.Application, messages: MessageStore) -> AsyncIterator[TestServer]:
    add_message_routes(app, messages)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server


def leave(store: MessageStore, n: int) -> list[int]:
    audio = (np.sin(np.arange(8000) * 0.2) * 5000).astype(np.int16)
    return [store.add(NewMessage(f"call-{i}", "13800138000", "general" if i % 2 else "claims", "cmn",
                                 WALL + timedelta(minutes=i), audio, "silence", f"留言 {i}", 0.6)).message_id
            for i in range(n)]


async def test_supervisor_lists_messages_newest_first_and_pages(served: TestServer, messages: MessageStore) -> None:
    ids = leave(messages, 3)
    async with TestClient(served, headers=bearer(SUPERVISOR)) as c:
        first = await (await c.get("/api/messages?limit=2")).json()
        assert [m["id"] for m in first["messages"]] == [ids[2], ids[1]]
        assert first["messages"][0]["transcript"] == "留言 2" and first["messages"][0]["duration_s"] == 1.0
        rest = await (await c.get(f"/api/messages?before={first['next_before']}")).json()
        assert [m["id"] for m in rest["messages"]] == [ids[0]] and rest["next_before"] is None
        only = await (await c.get("/api/messages?queue=general")).json()
        assert [m["id"] for m in only["messages"]] == [ids[1]]
        bad = await c.get("/api/messages?limit=1000")
        assert bad.status == 400 and "limit" in (await bad.json())["error"]


async def test_audio_is_the_wav_and_unknown_ids_are_404(served: TestServer, messages: MessageStore) -> None:
    (mid,) = leave(messages, 1)
    async with TestClient(served, headers=bearer(SUPERVISOR)) as c:
        resp = await c.get(f"/api/messages/{mid}/audio")
        assert resp.status == 200 and resp.content_type == "audio/wav"
        body = await resp.read()
        assert body[:4] == b"RIFF" and len(body) == 44 + 16000
        assert (await c.get("/api/messages/999/audio")).status == 404
        assert (await c.get("/api/messages/..%2f..%2fetc/audio")).status in (400, 404)


async def test_viewers_and_strangers_get_nothing(served: TestServer, messages: MessageStore) -> None:
    (mid,) = leave(messages, 1)
    async with TestClient(served) as c:
        for path in ("/api/messages", f"/api/messages/{mid}/audio"):
            assert (await c.get(path, headers=bearer(VIEWER))).status == 403
            assert (await c.get(path, headers=bearer("not-a-token"))).status == 401
            assert (await c.get(path)).status == 401


async def test_the_routes_are_documented(served: TestServer, app: web.Application) -> None:
    async with TestClient(served, headers=bearer(ADMIN)) as c:
        spec = await (await c.get("/api/openapi.json")).json()
    assert_spec_matches_routes(spec, app)
    assert spec["paths"]["/api/messages"]["get"]["security"] == [{"bearer": []}]


async def test_themes_group_the_transcripts_by_need_and_theme(
    app: web.Application, messages: MessageStore
) -> None:
    def classify(text: str) -> tuple[str, float]:
        return ("claim", 0.9) if "理赔" in text or "claim" in text else ("", 0.0)

    add_message_routes(app, messages, lambda: classify)
    audio = np.zeros(800, dtype=np.int16)
    for i, text in enumerate(["理赔进度怎么样", "理赔款没到", "claim form please", "my claim is late", "你好"]):
        messages.add(NewMessage(f"c{i}", "13800138000", "general", "cmn", WALL - timedelta(hours=i), audio, "silence",
                                text))
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server, headers=bearer(SUPERVISOR)) as c:
        window = {"since": "2026-01-04T00:00:00+00:00", "until": "2026-01-06T00:00:00+00:00"}
        body = await (await c.get("/api/messages/themes", params=window)).json()
        assert body["total"] == 5 and body["by_need"] == {"claim": 4, "unclassified": 1}
        assert {t["term"]: t["count"] for t in body["themes"]} == {"理赔": 2, "claim": 2}
        assert body["by_queue"] == {"general": 5} and body["other"] == 1
        bad = await c.get("/api/messages/themes?since=yesterday-ish")
        assert bad.status == 400
