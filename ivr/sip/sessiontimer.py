"""SIP session timers (RFC 4028): Session-Expires and Min-SE, who refreshes, and when the session ends; pure.

A caller gone without a BYE (a NAT binding lost, a phone that crashed) leaves a dialog nobody will end; the
session timer ends it. Each side agrees on an interval and on a refresher; the refresher re-INVITEs (or
UPDATEs) within the interval, and when no refresh arrives the other side sends BYE.

* headers: `SessionExpires.parse`/`serialize` (`1800;refresher=uac`), `parse_min_se`;
* the UAS side (section 9), for a request the peer sent: `negotiate_uas` says 422 with our Min-SE when the
  interval it asks for is below ours, else the interval, the refresher (when the peer leaves it open: us)
  and the headers of our 2xx (Session-Expires, and `Require: timer` only when the peer supports timer);
* the UAC side (section 7), for a request we send: `offer_headers` (`Supported: timer`, Session-Expires,
  Min-SE), `retry_after_422` (ask once more with the larger Min-SE) and `negotiate_uac` on the 2xx;
* the schedule, `SessionTimer`: as refresher, a refresh is due at half the interval; otherwise the session
  expires (BYE) at the interval minus min(32 s, interval/3) after the last refresh (section 10).

Roles are per transaction: `refresher=uac` in a re-INVITE we send means us. Everything here speaks of "we" and
"the peer" once the roles are resolved (`Negotiated.we_refresh`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.sip.errors import SipParseError
from ivr.sip.headers import CSEQ, MIN_SE, REQUIRE, SESSION_EXPIRES, SUPPORTED, VIA
from ivr.sip.message import Headers, Request, Response

TIMER = "timer"
"""The option tag of the extension (Supported, Require)."""
RFC_MIN_SE_S = 90
"""The smallest Min-SE RFC 4028 allows (section 4); a lower configured one is for tests only."""
TOO_SMALL = 422
TOO_SMALL_REASON = "Session Interval Too Small"
EXPIRY_MARGIN_S = 32.0
"""Section 10: the side that does not refresh sends BYE at min(32 s, interval/3) before the session expires."""

HeaderList = tuple[tuple[str, str], ...]


class Refresher(enum.Enum):
    """Who refreshes, named by the role in the transaction that carried the Session-Expires."""

    UAC = "uac"
    UAS = "uas"


@dataclass(slots=True, frozen=True)
class SessionExpires:
    """A Session-Expires header value: the interval and, when set, who refreshes."""

    interval_s: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, value: str) -> SessionExpires:
        head, *params = value.split(";")
        interval_s = _delta_seconds(head, SESSION_EXPIRES)
        refresher: Refresher | None = None
        for param in params:
            name, _, text = param.partition("=")
            if name.strip().lower() != "refresher":
                continue  # a generic parameter (RFC 4028 4: se-params)
            try:
                refresher = Refresher(text.strip().lower())
            except ValueError:
                raise SipParseError(f"bad Session-Expires header: refresher {text.strip()!r} is not uac or uas",
                                    header=SESSION_EXPIRES) from None
        return cls(interval_s, refresher)

    def serialize(self) -> str:
        if self.refresher is None:
            return str(self.interval_s)
        return f"{self.interval_s};refresher={self.refresher.value}"


def parse_min_se(value: str) -> int:
    """The seconds of a Min-SE header value (`90`, parameters after `;` are ignored)."""
    return _delta_seconds(value.split(";", 1)[0], MIN_SE)


def _delta_seconds(text: str, header: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise SipParseError(f"bad {header} header: expected a number of seconds, got {text!r}", header=header)
    return int(text)


def supports_timer(headers: Headers) -> bool:
    """The message names `timer` in Supported or Require."""
    return any(tag.strip().lower() == TIMER for name in (SUPPORTED, REQUIRE) for tag in headers.get_all(name))


def _session_expires(headers: Headers) -> SessionExpires | None:
    value = headers.get(SESSION_EXPIRES)
    return SessionExpires.parse(value) if value is not None else None


def _min_se(headers: Headers) -> int:
    value = headers.get(MIN_SE)
    return parse_min_se(value) if value is not None else 0


@dataclass(slots=True, frozen=True)
class TimerPolicy:
    """Our side's numbers (config `session_expires`, `min_se`)."""

    session_expires_s: int = 1800
    """The interval we ask for, and the largest we accept from a peer (we may lower theirs to it)."""
    min_se_s: int = RFC_MIN_SE_S
    """The smallest interval we accept: a peer asking for less gets 422 with this Min-SE."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_se_s <= self.session_expires_s:
            raise ValueError(f"session timer: min_se {self.min_se_s} must be between 1 and session_expires "
                             f"{self.session_expires_s}")


@dataclass(slots=True, frozen=True)
class Negotiated:
    """The session timer both sides agreed on in the last successful (re-)INVITE or UPDATE."""

    interval_s: int
    we_refresh: bool
    peer_supports: bool = True
    """The peer named `timer`: it knows the session expires (False: we run the timer alone, as refresher)."""

    @property
    def refresh_after_s(self) -> float:
        """When the refresher refreshes, from the last refresh (section 10: half the interval)."""
        return self.interval_s / 2

    @property
    def expire_after_s(self) -> float:
        """When the side that does not refresh sends BYE, from the last refresh (section 10)."""
        return self.interval_s - min(EXPIRY_MARGIN_S, self.interval_s / 3)


@dataclass(slots=True, frozen=True)
class UasAnswer:
    """What we answer a request carrying (or not) a session timer: a 2xx with `headers`, or 422."""

    negotiated: Negotiated | None
    """None: refuse with 422 (`headers` then holds our Min-SE)."""
    headers: HeaderList


def negotiate_uas(headers: Headers, policy: TimerPolicy) -> UasAnswer:
    """RFC 4028 section 9 for an INVITE, re-INVITE or UPDATE the peer sent (we are its UAS).

    Raises SipParseError (400) for a malformed Session-Expires or Min-SE.
    """
    supported = supports_timer(headers)
    asked = _session_expires(headers)
    floor = max(policy.min_se_s, _min_se(headers))
    if asked is not None and asked.interval_s < policy.min_se_s and supported:
        return UasAnswer(None, ((MIN_SE, str(policy.min_se_s)),))
    # We may lower the interval asked for to ours, never below either side's minimum; a peer that does not
    # know the extension cannot be told 422, so its interval is raised to our minimum instead.
    wanted = policy.session_expires_s if asked is None else min(asked.interval_s, policy.session_expires_s)
    interval_s = max(wanted, floor)
    if not supported:
        refresher = Refresher.UAS  # the peer does not know: only we can refresh
    elif asked is not None and asked.refresher is not None:
        refresher = asked.refresher  # the table of section 9: a refresher the UAC chose is kept
    else:
        refresher = Refresher.UAS  # left to us: refreshing ourselves also finds a caller gone silent
    answer: list[tuple[str, str]] = [(SESSION_EXPIRES, SessionExpires(interval_s, refresher).serialize())]
    if supported:
        answer.append((REQUIRE, TIMER))  # Supported: timer is the endpoint's (admission.SUPPORTED_HEADER)
    return UasAnswer(Negotiated(interval_s, refresher is Refresher.UAS, supported), tuple(answer))


def offer_headers(policy: TimerPolicy, min_se_s: int | None = None) -> HeaderList:
    """The headers of an INVITE we send (section 7.1; the refresher is left to the UAS). After a 422,
    `min_se_s` is the peer's Min-SE: both our interval and our Min-SE are raised to it (section 7.4)."""
    floor = max(policy.min_se_s, min_se_s or 0)
    return (
        (SUPPORTED, TIMER),
        (SESSION_EXPIRES, str(max(policy.session_expires_s, floor))),
        (MIN_SE, str(floor)),
    )


def refresh_headers(negotiated: Negotiated, policy: TimerPolicy, min_se_s: int | None = None) -> HeaderList:
    """The headers of a refresh we send as the refresher: the interval in force, refreshed by us (the UAC).
    After a 422 to it, `min_se_s` is the peer's Min-SE and the interval asked for (section 7.4)."""
    return (
        (SUPPORTED, TIMER),
        (SESSION_EXPIRES, SessionExpires(negotiated.interval_s, Refresher.UAC).serialize()),
        (MIN_SE, str(min_se_s or min(policy.min_se_s, negotiated.interval_s))),
    )


def min_se_after_422(response_headers: Headers, asked_s: int) -> int | None:
    """The peer's Min-SE from its 422 when it is above the interval we asked for (we then ask again with it,
    once); None when the 422 names none, a malformed one, or one we already met (the request fails)."""
    try:
        floor = _min_se(response_headers)
    except SipParseError:
        return None
    return floor if floor > asked_s else None


def retry_after_422(request: Request, response: Response, policy: TimerPolicy, *, via: str) -> Request | None:
    """A copy of our INVITE `request` asking again after its 422 (section 7.4): Session-Expires and Min-SE
    raised to the peer's Min-SE, new Via, CSeq+1. None when the 422 names no Min-SE above what we asked (the
    call then fails with the 422)."""
    try:
        asked = _session_expires(request.headers)
    except SipParseError:
        return None
    peer_min_s = min_se_after_422(response.headers, asked.interval_s) if asked is not None else None
    if peer_min_s is None:
        return None
    retry = Request(request.method, request.uri, request.headers.copy(), request.body)
    retry.headers.set(VIA, via)
    retry.headers.set(CSEQ, f"{request.cseq.seq + 1} {request.method}")
    for name, value in offer_headers(policy, peer_min_s):
        if name != SUPPORTED:
            retry.headers.set(name, value)
    return retry


def negotiate_uac(response_headers: Headers, current: Negotiated | None = None) -> Negotiated | None:
    """RFC 4028 section 7.2 on the 2xx to a request we sent: the interval and refresher it names.

    Without Session-Expires the peer runs no timer: None for a new session, `current` for a refresh (a peer that
    does not know the extension answers our refreshes without one; we stay the refresher). Raises
    SipParseError for a malformed one.
    """
    answered = _session_expires(response_headers)
    if answered is None:
        return current
    refresher = answered.refresher or Refresher.UAC  # the UAS left it to us, though it should not
    return Negotiated(answered.interval_s, refresher is Refresher.UAC, True)


class SessionTimerEvent(enum.Enum):
    """What a deadline of the session timer means."""

    REFRESH_DUE = "we are the refresher and half the interval has passed"
    EXPIRED = "no refresh arrived in time: send BYE"


class SessionTimer:
    """The schedule of one dialog's session timer: one deadline at a time, time passed in.

        timer = SessionTimer(negotiated, now=0.0)
        timer.next_deadline()                   # 900.0 as refresher of 1800 s, else 1768.0
        timer.handle_timer(now=900.0)           # SessionTimerEvent.REFRESH_DUE: send a refresh
        timer.refreshed(negotiated, now=900.4)  # a 2xx to anyone's refresh restarts the interval
    """

    __slots__ = ("negotiated", "stopped", "_refreshed_at", "_refreshing")

    def __init__(self, negotiated: Negotiated, now: float) -> None:
        self.negotiated = negotiated
        self.stopped = False
        self._refreshed_at = now
        self._refreshing = False

    def next_deadline(self) -> float | None:
        if self.stopped:
            return None
        if self.negotiated.we_refresh and not self._refreshing:
            return self._refreshed_at + self.negotiated.refresh_after_s
        return self._refreshed_at + self.negotiated.expire_after_s

    def handle_timer(self, now: float) -> SessionTimerEvent | None:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        if self.negotiated.we_refresh and not self._refreshing:
            self._refreshing = True  # until its answer; if none comes the session expires
            return SessionTimerEvent.REFRESH_DUE
        self.stopped = True
        return SessionTimerEvent.EXPIRED

    def refreshed(self, negotiated: Negotiated, now: float) -> None:
        """A 2xx to a session refresh (a re-INVITE or UPDATE either way) was sent or received."""
        if self.stopped:
            return
        self.negotiated = negotiated
        self._refreshed_at = now
        self._refreshing = False

    def refresh_failed(self, status: int) -> bool:
        """Our refresh got a final failure `status`; True when the session is over (section 10: 408/481).

        Another failure (491, 488, 500) leaves the session to expire unless a later refresh succeeds; a peer
        that does not know the extension refused a refresh it never asked for, so we stop refreshing it."""
        if status in (408, 481):
            self.stopped = True
            return True
        if not self.negotiated.peer_supports:
            self.stopped = True
        return False

    def stop(self) -> None:
        """The dialog ended: no more deadlines."""
        self.stopped = True


__all__ = [
    "HeaderList",
    "RFC_MIN_SE_S",
    "TIMER",
    "TOO_SMALL",
    "TOO_SMALL_REASON",
    "Negotiated",
    "Refresher",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerEvent",
    "TimerPolicy",
    "UasAnswer",
    "negotiate_uac",
    "negotiate_uas",
    "offer_headers",
    "parse_min_se",
    "min_se_after_422",
    "refresh_headers",
    "retry_after_422",
    "supports_timer",
]
