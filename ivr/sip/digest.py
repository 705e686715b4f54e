"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616; RFC 3261 section 22): MD5 and SHA-256,
with and without "-sess", qop=auth or none.

The UAC side builds an Authorization from a WWW-/Proxy-Authenticate challenge
(`make_authorization`); the registrar side issues stateless nonces bound to a secret and a time
(`NonceIssuer`), spots stale ones, checks the response (`verify_authorization`) and refuses a replayed
nonce-count (`NonceLedger`: the only state, kept for accepted answers alone, so challenges cost nothing).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.headers import AUTHORIZATION, WWW_AUTHENTICATE
from ivr.sip.uri import show

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
ALGORITHMS = ("MD5", "SHA-256")
"""The algorithms a registrar can offer (RFC 8760 section 2.4: one challenge per algorithm)."""


def _hasher(algorithm: str) -> tuple[str, bool]:
    """(hash name, is-session variant) for an algorithm token; AuthError when unsupported."""
    base = algorithm.upper()
    sess = base.endswith("-SESS")
    if sess:
        base = base[:-5]
    if base not in _HASHES:
        raise AuthError(f"unsupported digest algorithm '{algorithm}'")
    return base, sess


def _h(name: str, text: str) -> str:
    return _HASHES[name](text.encode()).hexdigest()


def parse_auth_params(text: str, header: str) -> tuple[str, dict[str, str]]:
    """``Digest a="b", c=d`` -> ("Digest", {"a": "b", "c": "d"}) with names lower-cased."""
    scheme, _, rest = text.strip().partition(" ")
    if not scheme:
        raise SipParseError(f"bad {header} header: empty", header=header)
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise SipParseError(
                f"bad {header} header: parameter {show(rest[i:], 30)} has no value", header=header
            )
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise SipParseError(f"bad {header} header: unterminated quoted string", header=header)
            value = "".join(chars)
            i += 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            value = rest[i:end].strip()
            i = end
        if not name:
            raise SipParseError(f"bad {header} header: empty parameter name", header=header)
        params[name] = value
    return scheme, params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _need(params: dict[str, str], name: str, header: str) -> str:
    value = params.get(name)
    if value is None:
        raise SipParseError(f"bad {header} header: missing {name} parameter", header=header)
    return value


def _check_scheme(scheme: str) -> None:
    if scheme.lower() != "digest":
        raise AuthError(f"unsupported authentication scheme {show(scheme, 30)}")


@dataclass(slots=True, frozen=True)
class DigestChallenge:
    """A WWW-Authenticate / Proxy-Authenticate Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None

    @classmethod
    def parse(cls, text: str, header: str = WWW_AUTHENTICATE) -> DigestChallenge:
        scheme, p = parse_auth_params(text, header)
        _check_scheme(scheme)
        qop = tuple(q.strip() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
        return cls(
            _need(p, "realm", header),
            _need(p, "nonce", header),
            p.get("algorithm", "MD5"),
            qop,
            p.get("opaque"),
            p.get("stale", "").lower() == "true",
            p.get("domain"),
        )

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        parts += [f"nonce={_quote(self.nonce)}", f"algorithm={self.algorithm}"]
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


@dataclass(slots=True, frozen=True)
class DigestCredentials:
    """An Authorization / Proxy-Authorization Digest response."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str, header: str = AUTHORIZATION) -> DigestCredentials:
        """Raises AuthError for a scheme other than Digest, SipParseError when malformed."""
        scheme, p = parse_auth_params(text, header)
        _check_scheme(scheme)
        qop = p.get("qop")
        if qop is not None and ("cnonce" not in p or "nc" not in p):
            raise SipParseError(f"bad {header} header: qop without cnonce and nc", header=header)
        return cls(
            _need(p, "username", header),
            _need(p, "realm", header),
            _need(p, "nonce", header),
            _need(p, "uri", header),
            _need(p, "response", header),
            p.get("algorithm"),
            p.get("cnonce"),
            p.get("nc"),
            qop,
            p.get("opaque"),
        )

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
        ]
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password), what a registrar may store instead of the password."""
    name, _ = _hasher(algorithm)
    return _h(name, f"{username}:{realm}:{password}")


def compute_response(
    *,
    ha1: str,
    algorithm: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str | None,
    nc: str | None,
    qop: str | None,
) -> str:
    """The request-digest of RFC 2617 section 3.2.2.1 / RFC 7616 section 3.4.1 (qop=auth or none)."""
    name, sess = _hasher(algorithm)
    if sess:
        ha1 = _h(name, f"{ha1}:{nonce}:{cnonce or ''}")
    ha2 = _h(name, f"{method}:{uri}")
    if qop is None:
        return _h(name, f"{ha1}:{nonce}:{ha2}")
    if qop != "auth":
        raise AuthError(f"unsupported qop '{qop}'")
    return _h(name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def make_authorization(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> DigestCredentials:
    """The credentials answering `challenge` for a request `method uri` (cnonce: fresh random text)."""
    if challenge.qop and "auth" not in challenge.qop:
        raise AuthError(f"unsupported qop {show(','.join(challenge.qop), 30)}: only auth is supported")
    qop = "auth" if challenge.qop else None
    nc_text = f"{nc:08x}" if qop else None
    ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    response = compute_response(
        ha1=ha1,
        algorithm=challenge.algorithm,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        cnonce=cnonce if qop else None,
        nc=nc_text,
        qop=qop,
    )
    return DigestCredentials(
        username,
        challenge.realm,
        challenge.nonce,
        uri,
        response,
        challenge.algorithm,
        cnonce if qop else None,
        nc_text,
        qop,
        challenge.opaque,
    )


def verify_authorization(
    creds: DigestCredentials,
    *,
    method: str,
    realm: str,
    password: str | None = None,
    ha1: str | None = None,
    nonce: str | None = None,
) -> bool:
    """True when `creds` prove knowledge of the password (or stored `ha1`) for this realm and,
    when `nonce` is given, answer that nonce. Unsupported algorithms and qops count as failure."""
    if creds.realm != realm or (nonce is not None and not hmac.compare_digest(creds.nonce, nonce)):
        return False
    algorithm = creds.algorithm or "MD5"
    try:
        if ha1 is None:
            if password is None:
                raise ValueError("verify_authorization needs password or ha1")
            ha1 = compute_ha1(creds.username, realm, password, algorithm)
        expected = compute_response(
            ha1=ha1,
            algorithm=algorithm,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            cnonce=creds.cnonce,
            nc=creds.nc,
            qop=creds.qop,
        )
    except AuthError:
        return False
    return hmac.compare_digest(expected, creds.response.lower())


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"
    """Genuine but expired: challenge again with stale=true, the UAC retries without asking the user."""
    INVALID = "invalid"


class NonceIssuer:
    """Stateless nonces ``<issued ms>.<salt>.<HMAC(secret, issued ms.salt)>``: any node with the secret
    checks them. The random salt makes every nonce unique, even two issued in the same millisecond, so a
    nonce-count ledger (`NonceLedger`) can tell one from another."""

    __slots__ = ("_secret", "lifetime_s")

    def __init__(self, secret: bytes, *, lifetime_s: float = 300.0) -> None:
        if not secret:
            raise ValueError("NonceIssuer needs a non-empty secret")
        self._secret = secret
        self.lifetime_s = lifetime_s

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def issued_at(self, nonce: str) -> float | None:
        """When a nonce this issuer could have made says it was issued (None: not one of ours in form)."""
        stamp = nonce.partition(".")[0]
        digits = stamp[1:] if stamp.startswith("-") else stamp
        return int(stamp) / 1000 if digits.isdigit() and len(digits) <= 18 else None

    def issue(self, now: float) -> str:
        body = f"{int(now * 1000)}.{secrets.token_hex(6)}"
        return f"{body}.{self._mac(body)}"

    def check(self, nonce: str, now: float) -> NonceStatus:
        body, dot, mac = nonce.rpartition(".")
        stamp = body.partition(".")[0]
        digits = stamp[1:] if stamp.startswith("-") else stamp
        if not dot or not digits.isdigit() or len(digits) > 18:
            return NonceStatus.INVALID
        if not hmac.compare_digest(mac, self._mac(body)):
            return NonceStatus.INVALID
        age_s = now - int(stamp) / 1000
        if age_s < -1.0:
            return NonceStatus.INVALID
        return NonceStatus.STALE if age_s > self.lifetime_s else NonceStatus.VALID

    def challenge(
        self,
        realm: str,
        now: float,
        *,
        algorithm: str = "MD5",
        stale: bool = False,
        opaque: str | None = None,
    ) -> DigestChallenge:
        """A fresh qop=auth challenge for `realm`."""
        _hasher(algorithm)
        return DigestChallenge(realm, self.issue(now), algorithm, ("auth",), opaque, stale)


class NonceLedger:
    """The highest nonce-count accepted for each nonce still alive (RFC 7616 section 3.4: nc must grow).

    Only answers that verified are recorded, so a flood of challenges or of wrong answers stores nothing.
    The ledger is bounded: when it must forget a nonce to make room, every nonce issued up to that one's
    time is refused from then on as stale (the phone retries on a fresh nonce without asking its user),
    so forgetting never makes an old answer replayable.
    """

    __slots__ = ("_issuer", "_seen", "_floor", "max_nonces")

    def __init__(self, issuer: NonceIssuer, *, max_nonces: int = 100_000) -> None:
        self._issuer = issuer
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        """nonce -> (highest nc accepted, issued at), oldest issued first."""
        self._floor = float("-inf")
        self.max_nonces = max_nonces

    def __len__(self) -> int:
        return len(self._seen)

    def forgotten(self, nonce: str) -> bool:
        """True for a nonce issued no later than one the ledger had to drop: refuse it as stale."""
        issued = self._issuer.issued_at(nonce)
        return issued is None or issued <= self._floor

    def accept(self, nonce: str, nc: str | None, now: float) -> bool:
        """Record an answer that verified; False when its nc is not above every nc seen for the nonce."""
        self._expire(now)
        count = _nc_value(nc)
        issued = self._issuer.issued_at(nonce)
        if count is None or issued is None or issued <= self._floor:
            return False
        seen = self._seen.get(nonce)
        if seen is not None and count <= seen[0]:
            return False
        self._seen[nonce] = (count, issued)
        if seen is None:
            self._place(nonce, issued)
        while len(self._seen) > self.max_nonces:
            _, (_, dropped_issued) = self._seen.popitem(last=False)
            self._floor = max(self._floor, dropped_issued)
        return True

    def _place(self, nonce: str, issued: float) -> None:
        """Keep issue order: a nonce answered late moves back past the ones issued after it."""
        later: list[str] = []
        for other in reversed(list(self._seen)):
            if other == nonce:
                continue
            if self._seen[other][1] <= issued:
                break
            later.append(other)
        for other in reversed(later):
            self._seen.move_to_end(other)

    def _expire(self, now: float) -> None:
        horizon = now - self._issuer.lifetime_s - 1.0
        while self._seen:
            oldest, (_, issued) = next(iter(self._seen.items()))
            if issued > horizon:
                break
            del self._seen[oldest]


def _nc_value(nc: str | None) -> int | None:
    if nc is None or len(nc) != 8:
        return None
    try:
        return int(nc, 16)
    except ValueError:
        return None
