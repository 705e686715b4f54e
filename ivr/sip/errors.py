"""The errors of the SIP package.

`SipParseError` is the peer's fault (bad bytes); it carries the status a user agent should answer
with (`status_hint`), the header at fault, whether RFC 3261 says to drop the message silently
(`drop`, e.g. any unparseable response), and the raw header fields it could still split, so the
user agent can build its error response with `ivr.sip.message.build_error_response`.
"""

from __future__ import annotations

from ivr.errors import IvrError


class SipError(IvrError):
    """Base of every error raised by the SIP package."""


class SipParseError(SipError):
    """The peer sent bytes that are not a valid SIP message (or a valid header value).

    str(error) is one short sentence fit to be sent as a reason phrase, e.g.
    ``bad Via header: missing branch parameter``.
    """

    status_hint: int
    header: str | None
    drop: bool
    method: str | None
    raw_headers: tuple[tuple[str, str], ...]

    def __init__(
        self,
        message: str,
        *,
        header: str | None = None,
        status_hint: int = 400,
        drop: bool = False,
        method: str | None = None,
        raw_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.header = header
        self.drop = drop
        self.method = method
        self.raw_headers = raw_headers

    @property
    def reason(self) -> str:
        """The error sentence, safe to use as a SIP reason phrase."""
        return str(self.args[0])


class TransactionError(SipError):
    """A transaction or dialog was driven illegally, or a peer's message fits none."""


class AuthError(SipError):
    """Digest authentication could not be performed (unknown scheme, algorithm, missing challenge)."""


class SdpError(SipError):
    """A session description is malformed; the user agent answers 400 (or 488 in an offer)."""

    status_hint: int = 400


class SdpNegotiationError(SdpError):
    """The offer holds nothing we can use; the user agent answers 488 Not Acceptable Here."""

    status_hint: int = 488
