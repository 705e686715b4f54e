"""The request guard: the Host and Origin checks, bearer tokens and roles, JSON-only mutations, the
security headers and the access log, applied to every request before a handler sees it.

In the order a request meets them:

- `/healthz` and `/readyz` are open to anyone (load balancers probe them by address, they tell nothing);
- `Host` must be one of the names the API answers to (421): a DNS-rebinding page sends its own name;
- an `Origin` or `Sec-Fetch-Site` naming another site is refused (403): the API is never used cross-site;
- a data route needs `Authorization: Bearer <token>` (401) of a role that covers the route's (403);
- POST, PUT and PATCH need `Content-Type: application/json` (415), so a cross-site `text/plain` form
  or `no-cors` fetch can never be a mutation; a DELETE may carry no body or a JSON one.

Pages and static files (the dashboard's shell, which holds no data) need no token. Every response
carries a CSP, `X-Frame-Options: DENY` and `nosniff`; every request is logged with the token's name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

import structlog
from aiohttp import web

from ivr.web.access import ApiAccess, ApiToken, Role

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ACCESS = web.AppKey("ivr_web_access", ApiAccess)
ROUTE_ROLES = web.AppKey("ivr_web_route_roles", dict[tuple[str, str], Role | None])
"""(method, route path) → the role it needs (None: open), filled by `create_app` from its route table."""
IDENTITY = web.RequestKey("ivr_web_identity", ApiToken)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
DATA_PREFIXES = ("/api/", "/metrics")
"""An unknown path under these still needs a token, so probing cannot map the API."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


RouteSpec = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]], Role | None]
"""(method, path, handler, role it needs: None open) of a route a module adds after `create_app`."""


def add_routes(app: web.Application, routes: Iterable[RouteSpec]) -> None:
    """Add optional routes (outbound, messages, recordings) with their roles, before the app starts."""
    roles = app[ROUTE_ROLES]
    for method, path, handler, role in routes:
        app.router.add_route(method, path, handler)
        roles[(method, path)] = role


def identity(request: web.Request) -> ApiToken:
    """The token the request was authenticated with (only on routes that need one)."""
    return request[IDENTITY]


def _refuse(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def required_role(request: web.Request) -> Role | None:
    """The role the matched route needs; a path under the data prefixes with no route needs a viewer."""
    method = "GET" if request.method == "HEAD" else request.method
    resource = request.match_info.route.resource
    key = (method, resource.canonical) if resource is not None else None
    roles = request.app[ROUTE_ROLES]
    if key is not None and key in roles:
        return roles[key]
    return Role.VIEWER if request.path.startswith(DATA_PREFIXES) else None


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _has_body(request: web.Request) -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    access = request.app[ACCESS]
    host = request.headers.get("Host")
    if not access.hosts.allows_host(host):
        return _refuse(421, f"this server does not answer to host {host!r} (see http_allowed_hosts)")
    origin = request.headers.get("Origin")
    if origin is not None and not access.hosts.allows_origin(origin, host):
        return _refuse(403, f"cross-origin request from {origin!r} refused")
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return _refuse(403, "cross-site request refused")
    needed = required_role(request)
    if needed is None:
        return await handler(request)
    presented = _bearer(request)
    if presented is None:
        return _refuse(401, "an API token is needed: send 'Authorization: Bearer <token>'",
                       **{"WWW-Authenticate": 'Bearer realm="ivr"'})  # fmt: skip
    token = access.book.authenticate(presented)
    if token is None:
        return _refuse(401, "the API token is not valid",
                       **{"WWW-Authenticate": 'Bearer realm="ivr", error="invalid_token"'})  # fmt: skip
    request[IDENTITY] = token
    if not token.role.covers(needed):
        return _refuse(403, f"token {token.name!r} is a {token.role.value}; this needs a {needed.value} token")
    wants_json = request.method in BODY_METHODS or (request.method == "DELETE" and _has_body(request))
    if wants_json and request.content_type != "application/json":
        return _refuse(415, f"{request.method} needs 'Content-Type: application/json', got {request.content_type!r}")
    return await handler(request)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One `http_request` line per request: method, path (no query: it may hold caller numbers),
    status, the token's name (never the token) and the time taken."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        token = request.get(IDENTITY)
        # Probes come every few seconds from every balancer: kept out of the info stream.
        emit = log.debug if request.path in OPEN_PATHS else log.info
        emit(
            "http_request",
            method=request.method,
            path=request.path,
            status=status,
            token=None if token is None else token.name,
            remote=request.remote,
            duration_ms=round(1000 * (time.monotonic() - started), 1),
        )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response, static files and streams included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(DATA_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
