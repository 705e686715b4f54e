"""Who is calling (issue 15): the caller's number, and whether anyone vouches for it. Pure.

`From` is whatever the caller's equipment wrote: anyone can put `sip:+88216...@` there. A trunk that
authenticated the caller says who it is in `P-Asserted-Identity` (RFC 3325), and that header means
something only when the INVITE came from such a trunk (a trusted source, `trunks:` in the config): from
anywhere else it is as forgeable as From and is ignored.

    identity = caller_identity(incoming.request, trusted=edge.trusted(incoming.source[0]))
    identity.number      # "+8613800138000" or "13800138000" (only + 0-9 * #, at most 32 characters)
    identity.verified    # True only for P-Asserted-Identity from a trusted trunk
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ivr.sip.errors import SipParseError
from ivr.sip.headers import P_ASSERTED_IDENTITY, NameAddr
from ivr.sip.message import Request

MAX_NUMBER_LEN = 32
_VISUAL_SEPARATORS = re.compile(r"[-.() ]")
_NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
_LABEL = re.compile(r"[A-Za-z0-9._+-]{1,32}")


class IdentitySource(enum.Enum):
    ASSERTED = "p-asserted-identity"
    FROM = "from"


@dataclass(slots=True, frozen=True)
class CallerIdentity:
    number: str
    """The caller's number as dialable text; "" when none could be read (anonymous, a name, garbage)."""
    verified: bool
    """A trusted trunk asserted it. Callbacks and caller-specific data should want this."""
    source: IdentitySource
    label: str = ""
    """What records and the dashboard show: the number, else the From user when it is a plain token
    (a softphone's "alice", "anonymous"); never used to dial back."""


def caller_identity(request: Request, *, trusted: bool) -> CallerIdentity:
    """The identity of an INVITE's caller; `trusted`: the INVITE came from a configured trunk."""
    if trusted:
        for value in request.headers.get_all(P_ASSERTED_IDENTITY):
            for part in _split_addresses(value):
                number = _number_of(part)
                if number:
                    return CallerIdentity(number, True, IdentitySource.ASSERTED, number)
    try:
        user = request.from_.uri.user
    except SipParseError:
        user = None
    number = number_of_uri_user(user)
    label = number or (user if user and _LABEL.fullmatch(user) else "")
    return CallerIdentity(number, False, IdentitySource.FROM, label)


def number_of_uri_user(user: str | None) -> str:
    """The dialable number in a URI's user part ("+86 138-0013-8000" → "+8613800138000"), or ""."""
    if not user:
        return ""
    text = _VISUAL_SEPARATORS.sub("", user.split(";", 1)[0])
    return text if _NUMBER.fullmatch(text) else ""


def _number_of(name_addr: str) -> str:
    try:
        uri = NameAddr.parse(name_addr.strip(), header=P_ASSERTED_IDENTITY).uri
    except SipParseError:
        return ""
    return number_of_uri_user(uri.user)


def _split_addresses(value: str) -> list[str]:
    """A header value may hold two identities (RFC 3325: one sip:, one tel:), comma-separated outside <>."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return [p for p in parts if p.strip()]
