"""Which new INVITEs an endpoint takes, and the calls it holds by Call-ID and source; pure.

The checks run in the order a refusal means most to the caller: a reused Call-ID (482), the edge's per-source
limits (503/403), draining (503 with Retry-After, so a proxy tries another node), no application (480),
capacity (503), then the request itself (420 unknown `Require`, 422 a session interval below our Min-SE
(RFC 4028), 415 a body that is not SDP, 400 no Contact, 404 a number we do not serve). OPTIONS probes read
`busy` so a load balancer takes a full or draining node out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ivr.sip.edge import EdgeVerdict, SipEdge
from ivr.sip.errors import SipParseError
from ivr.sip.headers import ACCEPT, CONTACT, REQUIRE, RETRY_AFTER, UNSUPPORTED
from ivr.sip.message import Request
from ivr.sip.sessiontimer import TOO_SMALL, TOO_SMALL_REASON, TimerPolicy, negotiate_uas

SDP = "application/sdp"
SUPPORTED_EXTENSIONS = frozenset({"replaces", "timer"})
SUPPORTED_HEADER = ", ".join(sorted(SUPPORTED_EXTENSIONS))
"""Our `Supported` value (2xx to INVITE, OPTIONS, 405): `replaces, timer`."""

Refusal = tuple[int, str | None, list[tuple[str, str]]]
"""Status, reason phrase (None: the standard one) and extra headers of the final response."""


class Admission:
    """The admission rules of one endpoint and the calls the peers placed that are offered, ringing or up."""

    __slots__ = ("_live", "_per_source", "accept_number", "accepting", "draining", "max_calls", "retry_after_s",
                 "session_timer")

    def __init__(self, *, accept_number: Callable[[str], bool] | None = None, max_calls: int | None = None,
                 retry_after_s: int = 30) -> None:
        self.accept_number = accept_number
        """False for dialed numbers we do not serve (404)."""
        self.max_calls = max_calls
        self.retry_after_s = retry_after_s
        self.accepting = True
        """False while no application takes calls: new INVITEs get 480."""
        self.draining = False
        """True once shutting down: new INVITEs get 503 with Retry-After."""
        self._live: dict[str, str] = {}
        """Call-ID -> source host of every call the peers placed that is offered, ringing or up."""
        self._per_source: Counter[str] = Counter()
        self.session_timer = TimerPolicy()
        """Our session-timer numbers: an INVITE asking for less than `min_se_s` gets 422 (RFC 4028 9)."""

    @property
    def active_calls(self) -> int:
        """Calls the peers placed that are offered, ringing or up (what `max_calls` limits)."""
        return len(self._live)

    @property
    def busy(self) -> bool:
        """Draining or at capacity: what an OPTIONS probe is told with 503."""
        return self.draining or self.max_calls is not None and self.active_calls >= self.max_calls

    def retry_after(self) -> list[tuple[str, str]]:
        return [(RETRY_AFTER, str(self.retry_after_s))]

    def refusal(self, request: Request, host: str, edge: SipEdge | None) -> Refusal | None:
        """Why the INVITE from `host` is refused, or None when it may be offered to the application."""
        if request.call_id in self._live:
            return 482, "Loop Detected (Call-ID in use)", []
        if edge is not None:
            verdict = edge.admit_invite(host, self._per_source[host])
            if verdict is EdgeVerdict.BUSY:
                return 503, "Too Many Calls From Source", self.retry_after()
            if verdict is not None:
                return 403, None, []
        if self.draining:
            return 503, "Draining", self.retry_after()
        if not self.accepting:
            return 480, None, []
        if self.max_calls is not None and self.active_calls >= self.max_calls:
            return 503, "Too Busy", self.retry_after()
        unsupported = [ext for ext in request.headers.get_all(REQUIRE) if ext.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported:
            return 420, None, [(UNSUPPORTED, ", ".join(unsupported))]
        try:
            timer = negotiate_uas(request.headers, self.session_timer)
        except SipParseError as exc:
            return exc.status_hint, str(exc), []
        if timer.negotiated is None:
            return TOO_SMALL, TOO_SMALL_REASON, list(timer.headers)
        if request.body and request.content_type != SDP:
            return 415, None, [(ACCEPT, SDP)]
        if not request.headers.get_all(CONTACT):
            return 400, "Missing Contact header", []
        if self.accept_number is not None and not self.accept_number(request.uri.user or ""):
            return 404, None, []
        return None

    def admit(self, call_id: str, host: str) -> None:
        """The call was offered to the application: it counts until `release`."""
        self._live[call_id] = host
        self._per_source[host] += 1

    def release(self, call_id: str) -> None:
        """A call the peer placed is over (refused, cancelled or ended): it stops counting."""
        host = self._live.pop(call_id, None)
        if host is not None:
            left = self._per_source[host] - 1
            if left > 0:
                self._per_source[host] = left
            else:
                del self._per_source[host]
