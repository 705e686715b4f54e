"""Who am I (`GET /api/whoami`) and the admin's token handlers (`/api/tokens`)."""

from __future__ import annotations

import structlog
from aiohttp import web

from ivr.store import BadQuery
from ivr.web.access import Role, TokenRefused, UnknownToken, valid_token_name
from ivr.web.api import json_body, json_error, str_field
from ivr.web.guard import ACCESS, identity

log = structlog.get_logger(__name__)


async def whoami(request: web.Request) -> web.Response:
    """The name and role of the token sent: the dashboard checks a token with it and shows who is signed in."""
    token = identity(request)
    return web.json_response({"name": token.name, "role": token.role.value})


async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response({"tokens": [t.to_json() for t in request.app[ACCESS].book.tokens]})


async def post_token(request: web.Request) -> web.Response:
    """Issue a token: the answer holds it once; the server keeps only its digest."""
    body = await json_body(request)
    name = str_field(body, "name", required=True, max_len=64)
    if not valid_token_name(name):
        raise BadQuery(f"field 'name' must be letters, digits or _.@- (starting with a letter or digit), got {name!r}")
    role_text = str_field(body, "role", required=True)
    try:
        role = Role(role_text)
    except ValueError:
        raise BadQuery(f"field 'role' must be one of {', '.join(r.value for r in Role)}, got {role_text!r}") from None
    try:
        secret = request.app[ACCESS].book.issue(name, role)
    except TokenRefused as exc:
        return json_error(409, str(exc))
    log.info("api_token_issued", name=name, role=role.value, by=identity(request).name)
    return web.json_response({"name": name, "role": role.value, "token": secret}, status=201)


async def delete_token(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        token = request.app[ACCESS].book.revoke(name)
    except UnknownToken as exc:
        return json_error(404, str(exc))
    except TokenRefused as exc:
        return json_error(409, str(exc))
    log.info("api_token_revoked", name=name, by=identity(request).name)
    return web.json_response(token.to_json())
