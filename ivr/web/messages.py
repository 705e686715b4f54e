"""Voice message routes: the list supervisors work through, and each message's audio.

    GET /api/messages                 newest first: ?limit=1..200 (50), ?before=ID to page, ?queue=NAME
    GET /api/messages/{id}/audio      the WAV (audio/wav), for the dashboard's player
    GET /api/messages/themes          voice of the customer: ?since=7d&until=now, needs, themes, per day/queue

Both need a supervisor token: a message is a caller's voice, number and words (personal data). The audio
is served only from inside the configured messages directory (`MessageStore.audio_path`), never from a
path the request could name. Registered by `add_message_routes(app, store)` after `create_app`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ivr.store import BadQuery, parse_time
from ivr.store.messages import MAX_PAGE, MessageStore
from ivr.voc import MAX_TEXTS, Classify, Comment, analyse
from ivr.web.access import Role
from ivr.web.guard import RouteSpec, add_routes

MESSAGES = web.AppKey("ivr_web_messages", MessageStore)


@dataclass(slots=True, frozen=True)
class Needs:
    """The flows' intent classifier as it is now (flows reload), for the needs in `/api/messages/themes`."""

    classify: Callable[[], Classify | None]


NEEDS = web.AppKey("ivr_web_messages_needs", Needs)


def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadQuery(f"query '{name}' must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


async def list_messages(request: web.Request) -> web.Response:
    store = request.app[MESSAGES]
    limit = _int(request, "limit", 50, 1, MAX_PAGE) or 50
    before = _int(request, "before", None, 1, 2**62)
    queue = request.query.get("queue") or None
    found = await asyncio.to_thread(store.page, limit=limit, before_id=before, queue=queue)
    page = [m.to_json() for m in found]
    more = len(found) == limit
    return web.json_response(
        {"messages": page, "next_before": found[-1].message_id if more and found else None},
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )


async def message_themes(request: web.Request) -> web.Response:
    store = request.app[MESSAGES]
    now = dt.datetime.now(dt.UTC)
    try:
        since = parse_time(request.query.get("since", "7d"), now)
        until = parse_time(request.query.get("until", "now"), now)
    except ValueError as exc:
        raise BadQuery(str(exc)) from None
    if until <= since:
        raise BadQuery("query 'until' must be after 'since'")
    found = await asyncio.to_thread(store.between, since, until, limit=MAX_TEXTS)
    comments = [Comment(m.transcript, m.created_at.date(), m.queue, m.kind) for m in found]
    voc = await asyncio.to_thread(analyse, comments, request.app[NEEDS].classify())
    body = {"since": since.isoformat(), "until": until.isoformat(), **voc.to_json()}
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def message_audio(request: web.Request) -> web.StreamResponse:
    store = request.app[MESSAGES]
    text = request.match_info["message_id"]
    if not (text.isascii() and text.isdigit()):
        raise BadQuery(f"message id must be a number, got {text!r}")
    message = await asyncio.to_thread(store.get, int(text))
    path = None if message is None else await asyncio.to_thread(store.audio_path, message)
    if path is None:
        return web.json_response({"error": f"no audio for message {text}"}, status=404)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"})


ROUTES: tuple[RouteSpec, ...] = (
    ("GET", "/api/messages", list_messages, Role.SUPERVISOR),
    ("GET", "/api/messages/themes", message_themes, Role.SUPERVISOR),
    ("GET", "/api/messages/{message_id}/audio", message_audio, Role.SUPERVISOR),
)


def add_message_routes(
    app: web.Application, store: MessageStore, classify: Callable[[], Classify | None] = lambda: None
) -> None:
    """Call right after `create_app`, before the app starts: the routes and their roles. `classify` gives the
    flows' intent classifier as it is now (flows reload), for the needs in `/api/messages/themes`."""
    app[MESSAGES] = store
    app[NEEDS] = Needs(classify)
    add_routes(app, ROUTES)


__all__ = ["MESSAGES", "ROUTES", "add_message_routes"]
