"""Who may use the HTTP API: bearer tokens with roles, and the Host/Origin names it answers to.

Pure objects, no aiohttp: `ivr.web.guard` applies them to requests. Where tokens come from:

- the config's `api_tokens` (name, role and the SHA-256 of the token: the file never holds a token);
- `IVR_API_TOKEN` in the environment: one admin token named "env" (tests and deployments use it);
- with neither, `ivr serve` makes an admin token named "local" at first start, writes it to
  `var/api-token` (mode 0600) and logs where; `ivr call` and the dashboard's user read it from there;
- tokens an admin issued through `POST /api/tokens`, kept (hashed) in `var/api-tokens.json`.

A token is 32 random bytes, so a plain SHA-256 of it is as hard to invert as the token is to guess:
a slow password hash would only slow every request down.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from yarl import URL

from ivr.config import EngineConfig
from ivr.errors import ConfigError
from ivr.web.errors import WebError

log = structlog.get_logger(__name__)

TOKEN_ENV = "IVR_API_TOKEN"
TOKEN_FILE = Path("var/api-token")
"""Where `ivr serve` writes its first-start token and clients look for one (relative to the working directory)."""
ISSUED_FILE_NAME = "api-tokens.json"
"""Beside `TOKEN_FILE`: the tokens issued through the API, hashed."""
TOKEN_PREFIX = "ivr_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Role(enum.Enum):
    """What a token may do; each role can do everything the ones before it can."""

    VIEWER = "viewer"
    """Dashboards and reports: live state, queues, agents, flows, summary figures, metrics, events."""
    SUPERVISOR = "supervisor"
    """+ call records (caller numbers, transcripts), emergency dispatch, callers' dialects."""
    ADMIN = "admin"
    """+ API tokens."""

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def covers(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


class TokenSource(enum.Enum):
    CONFIG = "config"
    ENV = "env"
    LOCAL = "local"
    """The first-start token in `var/api-token`."""
    ISSUED = "issued"
    """Issued by an admin through the API (the only kind the API can revoke)."""
    NODE = "node"
    """The workers of one node among themselves (`ivr.web.node`): made by the supervisor, never written."""


@dataclass(slots=True, frozen=True)
class ApiToken:
    """A token as the server keeps it: never the token itself, only its digest."""

    name: str
    """Shown in the access log and as `requested_by` of what the holder does."""
    role: Role
    digest: str
    """SHA-256 of the token, hex."""
    source: TokenSource = TokenSource.CONFIG

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role.value, "source": self.source.value}


class TokenRefused(WebError):
    """A token change the book cannot make (a duplicate name, a token from the config or environment)."""


class UnknownToken(TokenRefused):
    """No token has that name."""


def valid_token_name(name: str) -> bool:
    return bool(_NAME.match(name))


NODE_TOKEN_NAME = "node"

_ORIGINS = {
    TokenSource.CONFIG: "the config's api_tokens",
    TokenSource.ENV: TOKEN_ENV,
    TokenSource.LOCAL: str(TOKEN_FILE),
    TokenSource.ISSUED: "the API",
    TokenSource.NODE: "the node's supervisor",
}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_spec(name: str, role: Role) -> tuple[str, dict[str, str]]:
    """A fresh token and the `api_tokens` entry that admits it (for the config file)."""
    token = new_token()
    return token, {"name": name, "role": role.value, "sha256": token_digest(token)}


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be 1-64 letters, digits or _.@- (a letter or digit first), got {name!r}")
    return name


def _role(value: object, where: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ConfigError(f"{where}: role must be one of {known}, got {value!r}") from None


def parse_token_specs(specs: Iterable[Mapping[str, Any]], source: TokenSource = TokenSource.CONFIG) -> list[ApiToken]:
    """`api_tokens` entries (`{name, role, sha256}`) as tokens; a ConfigError names the entry at fault."""
    tokens: list[ApiToken] = []
    for i, spec in enumerate(specs):
        where = f"api_tokens[{i}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with name, role and sha256, got {spec!r}")
        unknown = sorted(set(spec) - {"name", "role", "sha256"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (keys: name, role, sha256)")
        digest = spec.get("sha256")
        if not isinstance(digest, str) or not _DIGEST.match(digest.lower()):
            raise ConfigError(f"{where}: sha256 must be the 64 hex digits of the token's SHA-256 (never the token)")
        name, role = _check_name(spec.get("name"), where), _role(spec.get("role"), where)
        tokens.append(ApiToken(name, role, digest.lower(), source))
    return tokens


@dataclass(slots=True)
class TokenBook:
    """The tokens the server accepts. `issue`/`revoke` change only API-issued tokens, saved to `issued_path`."""

    tokens: list[ApiToken] = field(default_factory=list)
    issued_path: Path | None = None
    _by_digest: dict[str, ApiToken] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for token in self.tokens:
            if token.name in seen:
                raise ConfigError(f"two API tokens are named {token.name!r}: names must be unique")
            seen.add(token.name)
        self._by_digest = {t.digest: t for t in self.tokens}

    def authenticate(self, presented: str) -> ApiToken | None:
        """The token whose digest matches `presented`, or None. Digests are compared in constant time."""
        digest = token_digest(presented)
        found = None
        for known, token in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = token
        return found

    def issue(self, name: str, role: Role) -> str:
        """A new token for `name` (returned once, kept only as a digest)."""
        _check_name(name, "token")
        if any(t.name == name for t in self.tokens):
            raise TokenRefused(f"a token named {name!r} already exists")
        token = new_token()
        self._add(ApiToken(name, role, token_digest(token), TokenSource.ISSUED))
        self._save()
        return token

    def revoke(self, name: str) -> ApiToken:
        for token in self.tokens:
            if token.name == name:
                if token.source is not TokenSource.ISSUED:
                    raise TokenRefused(
                        f"token {name!r} comes from {_ORIGINS[token.source]} and cannot be revoked through the API"
                    )
                self.tokens.remove(token)
                del self._by_digest[token.digest]
                self._save()
                return token
        raise UnknownToken(f"no token named {name!r}")

    def add_node_token(self, secret: str) -> None:
        """Accept the node's own token (the workers of a node talk to each other with it), as admin."""
        self._add(ApiToken(NODE_TOKEN_NAME, Role.ADMIN, token_digest(secret), TokenSource.NODE))

    def _add(self, token: ApiToken) -> None:
        self.tokens.append(token)
        self._by_digest[token.digest] = token

    def _save(self) -> None:
        if self.issued_path is None:
            return
        issued = [t for t in self.tokens if t.source is TokenSource.ISSUED]
        specs = [{"name": t.name, "role": t.role.value, "sha256": t.digest} for t in issued]
        write_private(self.issued_path, json.dumps(specs, indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (created 0600, never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _host_name(text: str) -> str:
    """The lower-case host of a Host header or Origin authority, without port or brackets."""
    text = text.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.rstrip(".")


@dataclass(slots=True, frozen=True)
class HostPolicy:
    """The names the API answers to. A browser tricked by DNS rebinding sends the attacker's name in
    `Host`, so a request naming any other host is refused; "*" turns the check off."""

    names: frozenset[str]

    @classmethod
    def for_server(cls, bind_host: str, extra: Iterable[str] = ()) -> HostPolicy:
        names = {_host_name(n) for n in (*LOOPBACK_NAMES, *extra)}
        if not _is_wildcard(bind_host):
            names.add(_host_name(bind_host))
        return cls(frozenset(names))

    def allows_host(self, host_header: str | None) -> bool:
        return "*" in self.names or (host_header is not None and _host_name(host_header) in self.names)

    def allows_origin(self, origin: str, host_header: str | None) -> bool:
        """An `Origin` is allowed when it is this server as the browser reached it (same host and port)."""
        try:
            url = URL(origin)
        except ValueError:
            return False
        if url.scheme not in ("http", "https") or not url.host or host_header is None:
            return False
        reached = URL(f"{url.scheme}://{host_header.strip()}")
        return (url.host.lower(), url.port) == ((reached.host or "").lower(), reached.port) and self.allows_host(
            host_header
        )


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


@dataclass(slots=True)
class ApiAccess:
    """Everything the request guard needs: the token book and the host policy."""

    book: TokenBook
    hosts: HostPolicy

    @classmethod
    def for_tokens(cls, *tokens: tuple[str, str, Role], hosts: Iterable[str] = ()) -> ApiAccess:
        """Tokens given in the clear as (token, name, role), on a loopback server (tests, embedded servers)."""
        book = TokenBook([ApiToken(name, role, token_digest(secret)) for secret, name, role in tokens])
        return cls(book, HostPolicy.for_server("127.0.0.1", hosts))


def server_access(
    config: EngineConfig, environ: Mapping[str, str] | None = None, token_file: Path = TOKEN_FILE
) -> ApiAccess:
    """The engine's access: config tokens, the environment's, issued ones, and the first-start token
    when there is neither a config nor an environment token (created on the first start, then reused)."""
    environ = os.environ if environ is None else environ
    tokens = parse_token_specs(config.api_tokens)
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        tokens.append(ApiToken("env", Role.ADMIN, token_digest(from_env), TokenSource.ENV))
    elif not tokens:
        tokens.append(ApiToken("local", Role.ADMIN, token_digest(_first_start_token(token_file)), TokenSource.LOCAL))
    issued_path = token_file.parent / ISSUED_FILE_NAME
    tokens += _load_issued(issued_path)
    hosts = HostPolicy.for_server(config.http_host, config.http_allowed_hosts)
    return ApiAccess(TokenBook(tokens, issued_path=issued_path), hosts)


def _first_start_token(path: Path) -> str:
    existing = read_token_file(path)
    if existing:
        log.info("api_token_reused", path=str(path.resolve()))
        return existing
    token = new_token()
    write_private(path, token + "\n")
    log.warning("api_token_created", path=str(path.resolve()), role=Role.ADMIN.value,
                hint="send it as 'Authorization: Bearer <token>'; the dashboard asks for it once")  # fmt: skip
    return token


def _load_issued(path: Path) -> list[ApiToken]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read issued API tokens: {exc}") from exc
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list of issued API tokens")
    try:
        return parse_token_specs(raw, TokenSource.ISSUED)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_token_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def client_token(environ: Mapping[str, str] | None = None, token_file: Path = TOKEN_FILE) -> str | None:
    """The token a local client (`ivr call`, scenarios, load runs) sends: `IVR_API_TOKEN`, then `var/api-token`."""
    environ = os.environ if environ is None else environ
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    try:
        return read_token_file(token_file)
    except OSError as exc:
        log.warning("api_token_unreadable", path=str(token_file), error=str(exc))
        return None


def bearer_headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}
