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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivr.sip.builders import build_response
from ivr.sip.digest import DigestCredentials, NonceIssuer, NonceStatus, verify_authorization
from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.headers import AUTHORIZATION, CONTACT, MIN_EXPIRES, PATH, SUPPORTED, WWW_AUTHENTICATE
from ivr.sip.message import NameAddr, Request, Response, new_tag
from ivr.sip.uri import SipUri


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

    def __init__(self, realm: str, users: Mapping[str, str], *, nonce_secret: bytes,
                 min_expires_s: int = 60, max_expires_s: int = 3600, default_expires_s: int = 3600) -> None:
        self.realm = realm
        self.users = dict(users)
        """username -> password, from config."""
        self.min_expires_s = min_expires_s
        self.max_expires_s = max_expires_s
        self.default_expires_s = default_expires_s
        self._nonces = NonceIssuer(nonce_secret)
        self._bindings: dict[str, dict[str, Binding]] = {}

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

    def handle(self, request: Request, now: float) -> Response:
        """Answer one REGISTER."""
        try:
            user = request.to.uri.user
            if not user:
                return self._reply(request, 404, "No user in To")
            refusal = self._authenticate(request, user, now)
            if refusal is not None:
                return refusal
            return self._update(request, user, now)
        except SipParseError as exc:
            return self._reply(request, exc.status_hint, exc.reason)

    def _authenticate(self, request: Request, user: str, now: float) -> Response | None:
        header = request.headers.get(AUTHORIZATION)
        if header is None:
            return self._challenge(request, now, stale=False)
        try:
            creds = DigestCredentials.parse(header)
        except (SipParseError, AuthError) as exc:
            return self._reply(request, 400, f"bad Authorization header: {exc}")
        password = self.users.get(creds.username)
        if password is None or creds.realm != self.realm:
            return self._challenge(request, now, stale=False)
        if creds.username != user:
            return self._reply(request, 403, f"user {creds.username} may not register {user}")
        nonce_state = self._nonces.check(creds.nonce, now)
        if nonce_state is not NonceStatus.VALID:
            return self._challenge(request, now, stale=nonce_state is NonceStatus.STALE)
        if not verify_authorization(creds, method="REGISTER", password=password, realm=self.realm):
            return self._challenge(request, now, stale=False)
        return None

    def _challenge(self, request: Request, now: float, *, stale: bool) -> Response:
        challenge = self._nonces.challenge(self.realm, now, stale=stale)
        return self._reply(request, 401, None, [(WWW_AUTHENTICATE, str(challenge))])

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

