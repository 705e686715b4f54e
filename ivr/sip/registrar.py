"""A registrar (RFC 3261 section 10.3) for agents' softphones: pure, time passed in.

    registrar = Registrar("ivr.local", {"agent7": "s3cret"}, nonce_secret=b"...")
    response = registrar.handle(register_request, now)     # 401 challenge, 200, 423, 403, 400, 500
    registrar.lookup("agent7", now)                         # -> [Binding(contact=sip:agent7@10.0.0.9...)]
    registrar.binding_for(uri, now)                         # the binding to call `uri` through (its Path)

Every REGISTER must carry digest credentials (RFC 2617/7616) for a configured user, who may only
register their own address-of-record. Bindings expire at `now + expires`; `Expires: 0` (or a
contact's `expires=0`) removes one, `Contact: *` with `Expires: 0` removes all. An expiry shorter
than `min_expires_s` gets 423 Interval Too Brief with Min-Expires; longer than `max_expires_s` is cut.

Path (RFC 3327): a REGISTER relayed by a proxy (Kamailio's `add_path()`) carries the proxies that must
stay between us and the phone. The Path is stored with each binding and is the route set of every
request we send to that contact (`Binding.route_set`); the 200 echoes it when the phone said
`Supported: path` (5.3: never to a phone that did not), and always says `Supported: path` itself.

Hardening (issue 15), for a registrar on a public network:
* every nonce-count is used once (`NonceLedger`): a sniffed Authorization replayed later is refused;
* the digest `uri` must be the Request-URI, `qop=auth` is required, and the challenge is offered with
  MD5 and SHA-256 (RFC 8760: one WWW-Authenticate each; `algorithms=` orders or narrows them);
* an unknown user and a wrong password get the same 401 (a fresh challenge), after the same work;
* wrong answers are throttled per source address and per user (`GuessThrottle`, 10 a minute): beyond
  that, answers are not even checked. An address that registered the user recently is exempt from the
  user's limit (not from its own), so an attack on an agent's name does not lock the agent's phone out;
* only HA1 digests are kept (`UserSecret`: a password from the demo file is hashed at start and
  dropped), nothing here logs a password or an HA1.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypedDict

import structlog

from ivr.sip.builders import build_response
from ivr.sip.digest import (
    ALGORITHMS,
    DigestChallenge,
    DigestCredentials,
    NonceIssuer,
    NonceLedger,
    NonceStatus,
    compute_ha1,
    verify_authorization,
)
from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.guesses import GuessLimits, GuessThrottle
from ivr.sip.headers import AUTHORIZATION, CONTACT, MIN_EXPIRES, PATH, SUPPORTED, USER_AGENT, WWW_AUTHENTICATE
from ivr.sip.message import NameAddr, Request, Response, new_tag
from ivr.sip.uri import SipUri

log = structlog.get_logger(__name__)

AGENT_REALM = "ivr"
"""The realm agents' phones register in: HA1 digests in the agents file are computed with it."""


DEFAULT_ALGORITHMS = ("MD5", "SHA-256")
"""Offered in this order, MD5 first, for interoperability: SIPp and SIPVicious (and many older stacks) read
only the first WWW-Authenticate and know only MD5, and an RFC 8760 phone takes the topmost it supports.
A site whose phones all do SHA-256 sets `sip_digest_algorithms: [SHA-256, MD5]` or `[SHA-256]`."""

SINGLE_ALGORITHM_AGENTS = ("baresip",)
"""User-Agent prefixes challenged with MD5 alone: baresip 1.x (libre 1.x) fails the whole REGISTER on a
challenge whose algorithm it lacks instead of skipping it (RFC 8760 section 2.4), so SHA-256 beside MD5
would lock it out. MD5 is offered to everyone anyway: claiming to be baresip downgrades nothing."""

DEFAULT_GUESS_LIMITS = GuessLimits()
"""10 wrong answers a minute per source and per user."""


class RegistrarOptions(TypedDict, total=False):
    """The tunable keyword arguments of `Registrar` (built from the config by `EngineConfig.registrar_options`)."""

    algorithms: tuple[str, ...]
    guess_limits: GuessLimits


class UserSecret(Protocol):
    """An agent's SIP secret as configured: a password (demo) and/or its HA1 digests."""

    @property
    def password(self) -> str | None: ...
    @property
    def ha1_md5(self) -> str | None: ...
    @property
    def ha1_sha256(self) -> str | None: ...


def user_ha1s(username: str, realm: str, secret: str | UserSecret) -> dict[str, str]:
    """algorithm -> HA1 for one user; a password gives every algorithm, an HA1 only its own."""
    if isinstance(secret, str):
        password: str | None = secret
        given = {}
    else:
        password = secret.password
        given = {alg: h.lower() for alg, h in (("MD5", secret.ha1_md5), ("SHA-256", secret.ha1_sha256)) if h}
    if password is not None:
        return {alg: compute_ha1(username, realm, password, alg) for alg in ALGORITHMS} | given
    return given


@dataclass(slots=True)
class RegistrarCounters:
    """Monotonic counts for /metrics."""

    challenges: int = 0
    registered: int = 0
    wrong_answers: int = 0
    """Answers that did not prove the password (unknown users included: they look the same)."""
    throttled: int = 0
    """Answers not checked because their source or user had used up its guesses."""
    replays: int = 0
    """Correct answers refused because their nonce-count was already used."""
    refused: int = 0
    """Answers refused before any check: no qop=auth, uri not the Request-URI, algorithm not offered."""


@dataclass(slots=True, frozen=True)
class Binding:
    """One contact of one user, valid until `expires_at` (seconds on the `now` clock)."""

    user: str
    contact: SipUri
    expires_at: float
    call_id: str
    cseq: int
    path: tuple[str, ...] = ()
    """The Path header values of the REGISTER, in order (RFC 3327): the proxies to reach `contact` through."""

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))

    @property
    def route_set(self) -> list[str]:
        """Route header values for a request to this contact (the Path, first hop first)."""
        return list(self.path)

    @property
    def next_hop(self) -> SipUri:
        """Where a request to this contact is sent: the first Path entry, else the contact itself."""
        return NameAddr.parse(self.path[0], header=PATH).uri if self.path else self.contact


class Registrar:
    """Digest-authenticated bindings of user -> contacts, expiring with `now`."""

    def __init__(self, realm: str, users: Mapping[str, str | UserSecret], *, nonce_secret: bytes,
                 min_expires_s: int = 60, max_expires_s: int = 3600, default_expires_s: int = 3600,
                 algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS, guess_limits: GuessLimits = DEFAULT_GUESS_LIMITS,
                 remember_sources_s: float = 3600.0,
                 single_algorithm_agents: tuple[str, ...] = SINGLE_ALGORITHM_AGENTS) -> None:
        unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
        if not algorithms or unknown:
            raise ValueError(f"digest algorithms must be some of {', '.join(ALGORITHMS)}, not {algorithms!r}")
        self.realm = realm
        self.algorithms = algorithms
        self._ha1 = {user: user_ha1s(user, realm, secret) for user, secret in users.items()}
        """username -> algorithm -> HA1; the passwords themselves are not kept."""
        self.min_expires_s = min_expires_s
        self.max_expires_s = max_expires_s
        self.default_expires_s = default_expires_s
        self.remember_sources_s = remember_sources_s
        self.single_algorithm_agents = tuple(agent.lower() for agent in single_algorithm_agents)
        self.counters = RegistrarCounters()
        self._nonces = NonceIssuer(nonce_secret)
        self._ledger = NonceLedger(self._nonces)
        self._guesses = GuessThrottle(guess_limits)
        self._known_sources: OrderedDict[tuple[str, str], float] = OrderedDict()
        """(user, source address) -> when it last registered that user: exempt from the user's limit."""
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._decoy = {alg: compute_ha1("", realm, "", alg) for alg in ALGORITHMS}

    @property
    def users(self) -> frozenset[str]:
        return frozenset(self._ha1)

    # -- queries --------------------------------------------------------------------------------------

    def lookup(self, user: str, now: float) -> list[Binding]:
        """The user's live contacts, most recently refreshed first."""
        self._expire(user, now)
        bindings = list(self._bindings.get(user, {}).values())
        return sorted(bindings, key=lambda b: b.expires_at, reverse=True)

    def binding_for(self, uri: SipUri, now: float) -> Binding | None:
        """The binding to reach `uri` through: the one whose contact it is, else its user's freshest one."""
        if not uri.user:
            return None
        bindings = self.lookup(uri.user, now)
        wanted = str(uri)
        for binding in bindings:
            if str(binding.contact) == wanted:
                return binding
        if not bindings:
            for user in list(self._bindings):
                for binding in self.lookup(user, now):
                    if str(binding.contact) == wanted:
                        return binding
        return bindings[0] if bindings else None

    def users_online(self, now: float) -> list[str]:
        return [user for user in list(self._bindings) if self.lookup(user, now)]

    # -- REGISTER -------------------------------------------------------------------------------------

    def handle(self, request: Request, now: float, source: str | None = None) -> Response:
        """Answer one REGISTER; `source` is the sender's address (default: the top Via's received/host)."""
        try:
            user = request.to.uri.user
            if not user:
                return self._reply(request, 404, "No user in To")
            via = request.top_via
            refusal = self._authenticate(request, user, source or via.received or via.host, now)
            if refusal is not None:
                return refusal
            return self._update(request, user, now)
        except SipParseError as exc:
            return self._reply(request, exc.status_hint, exc.reason)

    def _authenticate(self, request: Request, user: str, source: str, now: float) -> Response | None:
        header = request.headers.get(AUTHORIZATION)
        if header is None:
            return self._challenge(request, now, stale=False)
        try:
            creds = DigestCredentials.parse(header)
        except (SipParseError, AuthError) as exc:
            return self._reply(request, 400, f"bad Authorization header: {exc}")
        if creds.realm != self.realm:
            return self._challenge(request, now, stale=False)
        if creds.username != user:  # before looking the user up: the same answer whether it exists or not
            return self._reply(request, 403, "credentials are for another user")
        refusal = self._form_refusal(request, creds)
        if refusal is not None:
            self.counters.refused += 1
            return self._reply(request, 400, refusal)
        nonce_state = self._nonces.check(creds.nonce, now)
        if nonce_state is NonceStatus.VALID and self._ledger.forgotten(creds.nonce):
            nonce_state = NonceStatus.STALE
        if nonce_state is not NonceStatus.VALID:
            return self._challenge(request, now, stale=nonce_state is NonceStatus.STALE)
        user_key = "user:" + user
        known = self._source_known(user, source, now)
        if self._guesses.blocked(source, now) or (
            user in self._ha1 and not known and self._guesses.blocked(user_key, now)
        ):
            self.counters.throttled += 1
            return self._challenge(request, now, stale=False)
        if not self._verify(creds, user):
            self.counters.wrong_answers += 1
            log.info("register_auth_failed", user=user, source=source)  # at most 10 a minute per source
            self._guesses.failed(source, now)
            if user in self._ha1 and not known:
                self._guesses.failed(user_key, now)
            return self._challenge(request, now, stale=False)
        if not self._ledger.accept(creds.nonce, creds.nc, now):
            self.counters.replays += 1
            log.warning("register_replay_refused", user=user, source=source)
            self._guesses.failed(source, now)
            return self._challenge(request, now, stale=False)
        self._remember_source(user, source, now)
        self.counters.registered += 1
        return None

    def _form_refusal(self, request: Request, creds: DigestCredentials) -> str | None:
        """Why these credentials cannot be for this request, whoever the user is (None: they can)."""
        if creds.qop != "auth":
            return "digest qop=auth is required"
        if (creds.algorithm or "MD5").upper() not in self.algorithms:
            return "digest algorithm was not offered"
        try:
            same_uri = SipUri.parse(creds.uri) == request.uri
        except SipParseError:
            same_uri = False
        if not same_uri:
            return "digest uri is not the Request-URI"
        return None

    def _verify(self, creds: DigestCredentials, user: str) -> bool:
        """Check the answer; an unknown user is checked against a decoy, so both take the same work."""
        algorithm = (creds.algorithm or "MD5").upper()
        ha1s = self._ha1.get(user)
        ha1 = ha1s.get(algorithm) if ha1s is not None else None
        ok = verify_authorization(creds, method="REGISTER", realm=self.realm, ha1=ha1 or self._decoy[algorithm])
        return ok and ha1 is not None

    def _source_known(self, user: str, source: str, now: float) -> bool:
        since = self._known_sources.get((user, source))
        return since is not None and now - since < self.remember_sources_s

    def _remember_source(self, user: str, source: str, now: float) -> None:
        self._known_sources.pop((user, source), None)
        self._known_sources[(user, source)] = now
        while len(self._known_sources) > max(16, 4 * len(self._ha1)):
            self._known_sources.popitem(last=False)

    def _challenge(self, request: Request, now: float, *, stale: bool) -> Response:
        """401 with one challenge per offered algorithm, all on one nonce (RFC 8760 section 2.4)."""
        self.counters.challenges += 1
        nonce = self._nonces.issue(now)
        algorithms = self.algorithms
        user_agent = (request.headers.get(USER_AGENT) or "").lower()
        if "MD5" in algorithms and user_agent.startswith(self.single_algorithm_agents):
            algorithms = ("MD5",)
        headers = [
            (WWW_AUTHENTICATE, str(DigestChallenge(self.realm, nonce, algorithm, ("auth",), None, stale)))
            for algorithm in algorithms
        ]
        return self._reply(request, 401, None, headers)

    def _update(self, request: Request, user: str, now: float) -> Response:
        raw_contacts = request.headers.get_all(CONTACT)
        header_expires = request.expires
        call_id, cseq = request.call_id, request.cseq.seq
        current = self._bindings.setdefault(user, {})
        self._expire(user, now)
        if any(c.strip() == "*" for c in raw_contacts):
            if len(raw_contacts) != 1 or header_expires != 0:
                return self._reply(request, 400, "Contact * needs Expires: 0 and no other contact")
            current.clear()
            return self._ok(request, user, now)
        path = tuple(request.headers.get_all(PATH))
        changes: list[tuple[str, SipUri, int]] = []
        for contact in request.contact:
            expires = _contact_expires(contact, header_expires, self.default_expires_s)
            if 0 < expires < self.min_expires_s:
                return self._reply(request, 423, None, [(MIN_EXPIRES, str(self.min_expires_s))])
            key = str(contact.uri)
            existing = current.get(key)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                return self._reply(request, 500, "REGISTER out of order")
            changes.append((key, contact.uri, min(expires, self.max_expires_s)))
        for key, uri, expires in changes:
            if expires == 0:
                current.pop(key, None)
            else:
                current[key] = Binding(user, uri, now + expires, call_id, cseq, path)
        return self._ok(request, user, now)

    def _ok(self, request: Request, user: str, now: float) -> Response:
        headers = [(CONTACT, f"<{b.contact}>;expires={b.expires_in(now)}") for b in self.lookup(user, now)]
        if not self._bindings.get(user):
            self._bindings.pop(user, None)
        if "path" in (ext.lower() for ext in request.headers.get_all(SUPPORTED)):
            headers += [(PATH, value) for value in request.headers.get_all(PATH)]
        headers.append((SUPPORTED, "path"))
        return self._reply(request, 200, None, headers)

    def _reply(self, request: Request, status: int, reason: str | None,
               headers: list[tuple[str, str]] | None = None) -> Response:
        return build_response(request, status, reason, to_tag=new_tag(), headers=headers or [])

    def _expire(self, user: str, now: float) -> None:
        bindings = self._bindings.get(user)
        if not bindings:
            return
        for key in [k for k, b in bindings.items() if b.expires_at <= now]:
            del bindings[key]


def _contact_expires(contact: NameAddr, header_expires: int | None, default: int) -> int:
    value = contact.param("expires")
    if value is not None and value.strip().isdigit():
        return int(value)
    return header_expires if header_expires is not None else default

