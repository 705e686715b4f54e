"""Answering a digest challenge as a client (RFC 3261 22.2/22.3): our credentials and the retried request.

`authorized_retry` turns a request refused with 401/407 into the copy that answers the challenge (new Via
branch, CSeq + 1, Authorization or Proxy-Authorization). Checking such answers, as a server, is
`ivr.sip.digest`/`ivr.sip.registrar`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ivr.sip.digest import DigestChallenge, make_authorization
from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.headers import AUTHORIZATION, CSEQ, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, VIA, WWW_AUTHENTICATE
from ivr.sip.message import Request, Response

__all__ = ["Credentials", "authorized_retry"]


@dataclass(slots=True, frozen=True)
class Credentials:
    """A digest username and password (for a trunk, or for calls that get challenged)."""

    username: str
    password: str


def authorized_retry(request: Request, challenge_response: Response, credentials: Credentials, *, via: str,
                     nc: int = 1) -> Request | None:
    """A copy of `request` answering the 401/407 challenge (Via `via`, CSeq+1), or None if impossible.

    `nc` is the nonce-count: every further request answering the same challenge counts up (RFC 7616 3.4).
    """
    proxy = challenge_response.status == 407
    header = challenge_response.headers.get(PROXY_AUTHENTICATE if proxy else WWW_AUTHENTICATE)
    if header is None:
        return None
    try:
        challenge = DigestChallenge.parse(header)
        creds = make_authorization(challenge, method=request.method, uri=str(request.uri),
                                   username=credentials.username, password=credentials.password,
                                   cnonce=secrets.token_hex(8), nc=nc)
    except (AuthError, SipParseError):
        return None
    retry = Request(request.method, request.uri, request.headers.copy(), request.body)
    retry.headers.set(VIA, via)
    retry.headers.set(CSEQ, f"{request.cseq.seq + 1} {request.method}")
    retry.headers.set(PROXY_AUTHORIZATION if proxy else AUTHORIZATION, str(creds))
    return retry
