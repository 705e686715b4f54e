"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), parsed and serialized.

Escapes are kept as received (``%41`` stays ``%41``) so serialization gives back the same text;
`unescape()` and `SipUri.matches()` give the RFC 3261 section 19.1.4 comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ivr.sip.errors import SipParseError

_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = rf"[{_UNRESERVED}&=+$,;?/%]+"
_PASSWORD = rf"[{_UNRESERVED}&=+$,%]*"
_HOST = r"[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\]"
_PCHAR = rf"[{_UNRESERVED}\[\]/:&+$%]+"
_HCHAR = rf"[{_UNRESERVED}\[\]/?:+$%]"

_HOSTPORT = (
    rf"({_HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;{_PCHAR}(?:={_PCHAR})?)*)"
    rf"(?:\?({_HCHAR}+={_HCHAR}*(?:&{_HCHAR}+={_HCHAR}*)*))?"
)
_SIP_USER = re.compile(rf"({_USER})(?::({_PASSWORD}))?@" + _HOSTPORT)
_SIP_HOST = re.compile(_HOSTPORT)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL = re.compile(r"(?P<number>[0-9A-Fa-f*#+\-.()pw]+)(?P<params>(?:;" + _PCHAR + r"(?:=" + _PCHAR + r")?)*)")
_OPAQUE_BAD = re.compile(r'[\s<>"]')
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")

Params = tuple[tuple[str, "str | None"], ...]

#: URI parameters that must match when present in either URI (RFC 3261 section 19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


class UriError(SipParseError):
    """A URI failed to parse; `why` is the reason without the URI, for callers that add context."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"bad URI {show(text)}: {why}")
        self.text = text
        self.why = why


def show(text: str, limit: int = 60) -> str:
    """Quote a peer's text for an error sentence: one line, printable, bounded in length."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut) + "'"


def unescape(text: str) -> str:
    """Undo %XX escapes (RFC 3261 section 19.1.2); the result may hold any code point."""
    if "%" not in text:
        return text
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def parse_uri_params(text: str) -> Params:
    """``;a=1;b`` -> (("a", "1"), ("b", None)); the text is already known to be well formed."""
    out: list[tuple[str, str | None]] = []
    for item in text.split(";")[1:]:
        name, eq, value = item.partition("=")
        out.append((name, value if eq else None))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def find_param(params: Params, name: str) -> str | None:
    """The value of a parameter (case-insensitive name); "" for a flag, None when absent."""
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return "" if v is None else v
    return None


def set_param(params: Params, name: str, value: str | None) -> Params:
    """Params with `name` set to `value` (None makes it a flag), replacing any old value."""
    lname = name.lower()
    kept = tuple(p for p in params if p[0].lower() != lname)
    return kept + ((name, value),)


@dataclass(slots=True, frozen=True)
class SipUri:
    """A sip:, sips:, tel: or other absolute URI (other schemes keep their text in `opaque`)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    password: str | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; raises SipParseError naming what is wrong."""
        colon = text.find(":")
        scheme = text[:colon]
        if colon <= 0 or not _SCHEME.fullmatch(scheme):
            raise UriError(text, "no scheme")
        scheme = scheme.lower()
        rest = text[colon + 1 :]
        if scheme == "sip" or scheme == "sips":
            user: str | None = None
            password: str | None = None
            if "@" in rest:
                m = _SIP_USER.fullmatch(rest)
                if m is None:
                    raise UriError(text, _diagnose_sip(rest))
                user, password, host, port_text, params_text, headers_text = m.groups()
            else:
                m = _SIP_HOST.fullmatch(rest)
                if m is None:
                    raise UriError(text, _diagnose_sip(rest))
                host, port_text, params_text, headers_text = m.groups()
            port = int(port_text) if port_text else None
            if port is not None and port > 65535:
                raise UriError(text, f"port {port} is out of range")
            return cls(
                scheme,
                user,
                host,
                port,
                password,
                parse_uri_params(params_text) if params_text else (),
                _parse_uri_headers(headers_text) if headers_text else (),
            )
        if scheme == "tel":
            t = _TEL.fullmatch(rest)
            if t is None:
                raise UriError(text, "not a valid telephone number")
            params_text = t.group("params")
            return cls("tel", t.group("number"), "", params=parse_uri_params(params_text))
        if not rest or _OPAQUE_BAD.search(rest):
            raise UriError(text, "contains whitespace, quotes or angle brackets")
        return cls(scheme, None, "", opaque=rest)

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += (":", self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += (":", str(self.port))
        if self.params:
            parts.append(format_params(self.params))
        if self.headers:
            parts += ("?", "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(parts)

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs."""
        return self.scheme == "sip" or self.scheme == "sips"

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def default_port(self) -> int:
        """The port to use: the explicit one, else 5061 for sips, 5060 otherwise."""
        if self.port is not None:
            return self.port
        return 5061 if self.scheme == "sips" else 5060

    def param(self, name: str) -> str | None:
        """A URI parameter's value ("" for a flag like ;lr), None when absent."""
        return find_param(self.params, name)

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with these parameters set (None makes a flag)."""
        new = self.params
        for name, value in params.items():
            new = set_param(new, name, value)
        return replace(self, params=new)

    def without_params(self, *names: str) -> SipUri:
        """A copy without these parameters."""
        drop = {n.lower() for n in names}
        return replace(self, params=tuple(p for p in self.params if p[0].lower() not in drop))

    def matches(self, other: SipUri) -> bool:
        """URI equivalence per RFC 3261 section 19.1.4 (escapes undone, host case-insensitive)."""
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if _unescaped(self.user) != _unescaped(other.user):
            return False
        if _unescaped(self.password) != _unescaped(other.password):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = {n.lower(): unescape(v or "").lower() for n, v in self.params}
        theirs = {n.lower(): unescape(v or "").lower() for n, v in other.params}
        for name in set(mine) | set(theirs):
            if name in _MUST_MATCH or (name in mine and name in theirs):
                if mine.get(name) != theirs.get(name):
                    return False
        mh = {n.lower(): unescape(v) for n, v in self.headers}
        th = {n.lower(): unescape(v) for n, v in other.headers}
        return mh == th


def _unescaped(text: str | None) -> str | None:
    return None if text is None else unescape(text)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in text.split("&"):
        name, _, value = item.partition("=")
        out.append((name, value))
    return tuple(out)


def _diagnose_sip(rest: str) -> str:
    """Say why a sip: URI's text after the scheme does not match the grammar (error path only)."""
    if any(c.isspace() for c in rest):
        return "contains whitespace"
    if any(c in rest for c in '<>"'):
        return "contains quotes or angle brackets"
    at = rest.find("@")
    hostpart = rest[at + 1 :] if at >= 0 else rest
    if at == 0:
        return "empty user part"
    if at > 0 and not re.fullmatch(rf"{_USER}(?::{_PASSWORD})?", rest[:at]):
        return "bad character in user part"
    q = hostpart.find("?")
    if q >= 0:
        if not re.fullmatch(rf"{_HCHAR}+={_HCHAR}*(?:&{_HCHAR}+={_HCHAR}*)*", hostpart[q + 1 :]):
            return "bad URI headers"
        hostpart = hostpart[:q]
    semi = hostpart.find(";")
    if semi >= 0:
        for item in hostpart[semi + 1 :].split(";"):
            if not item:
                return "empty parameter"
            if not re.fullmatch(rf"{_PCHAR}(?:={_PCHAR})?", item):
                return f"bad parameter {show(item, 30)}"
        hostpart = hostpart[:semi]
    if not hostpart or hostpart.startswith(":"):
        return "empty host"
    host, colon, port = hostpart.rpartition(":") if not hostpart.endswith("]") else (hostpart, "", "")
    if colon and not host.endswith("]") and ":" in host:
        return "bad host"
    if colon:
        if not port.isdigit() or len(port) > 5:
            return f"bad port {show(port, 10)}"
    else:
        host = hostpart
    if not re.fullmatch(_HOST, host):
        return f"bad host {show(host, 40)}"
    return "not a valid SIP URI"
