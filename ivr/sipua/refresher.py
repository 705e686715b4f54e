"""A call leg's session timer (RFC 4028) on the engine's clock: refreshes as refresher, BYE when refreshes stop.

The schedule and the negotiation are pure (`ivr.sip.sessiontimer`); this adapter arms one `Clock.call_at`
for the schedule's next deadline, re-armed after each refresh and cancelled when the dialog ends, and runs
what the deadline calls for as a task of the `SipCore`: our refresh (UPDATE without a body when the peer
allows UPDATE, else a re-INVITE with our current SDP), or the leg's BYE (`expire`) with the end reason
`session_expired`. The peer's own refreshes reach it from `CallLeg` through `answer` and `refreshed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from ivr.clock import TimerHandle
from ivr.sip.admission import SDP
from ivr.sip.dialog import Dialog
from ivr.sip.errors import SipParseError, TransactionError
from ivr.sip.message import Request, Response
from ivr.sip.sessiontimer import (
    TOO_SMALL,
    HeaderList,
    Negotiated,
    SessionTimer,
    SessionTimerEvent,
    TimerPolicy,
    UasAnswer,
    min_se_after_422,
    negotiate_uac,
    negotiate_uas,
    refresh_headers,
)
from ivr.sipua.core import SipCore

log = structlog.get_logger(__name__)

SESSION_EXPIRED = "session_expired"
"""The end reason of a leg whose session expired (no refresh in time, or our refresh got 408/481)."""

Sender = Callable[[Request, str], Awaitable[Response]]
"""Sends an in-dialog request and returns its final response; the string is the leg's end reason should the
response end the dialog (408, 481)."""


class SessionRefresher:
    """One dialog's session timer: the pure `SessionTimer` and the one clock timer armed for it."""

    def __init__(self, core: SipCore, dialog: Dialog, policy: TimerPolicy, negotiated: Negotiated | None, *,
                 peer_allows_update: bool, send: Sender, invite: Sender, local_sdp: Callable[[], bytes],
                 expire: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._core = core
        self._dialog = dialog
        self.policy = policy
        self.peer_allows_update = peer_allows_update
        """The peer listed UPDATE in Allow: we refresh by UPDATE (no SDP, no glare with its re-INVITEs)."""
        self._send = send
        self._invite = invite
        self._local_sdp = local_sdp
        self._expire = expire
        self._timer: SessionTimer | None = None
        self._handle: TimerHandle | None = None
        self.refreshes_sent = 0
        if negotiated is not None:
            self.refreshed(negotiated)

    @property
    def negotiated(self) -> Negotiated | None:
        """The session timer in force (None: the session does not expire)."""
        return self._timer.negotiated if self._timer is not None and not self._timer.stopped else None

    def answer(self, request: Request) -> UasAnswer:
        """How to answer the peer's re-INVITE or UPDATE: a 2xx with these headers, or 422 (raises
        SipParseError for a malformed Session-Expires or Min-SE: 400)."""
        return negotiate_uas(request.headers, self.policy)

    def refreshed(self, negotiated: Negotiated | None) -> None:
        """A 2xx to a refresh was sent or received (None: it carried no timer, the current one goes on)."""
        if negotiated is None:
            negotiated = self.negotiated
            if negotiated is None:
                return
        now = self._core.clock.now()
        if self._timer is None:
            self._timer = SessionTimer(negotiated, now)
        else:
            self._timer.refreshed(negotiated, now)
        self._arm()

    def stop(self) -> None:
        """The dialog ended: disarm (idempotent), and let go of the leg's methods so that the ended leg and
        this refresher are freed by reference counting, not left in a cycle for the collector."""
        if self._timer is not None:
            self._timer.stop()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._send = self._invite = _dialog_ended
        self._local_sdp = _no_sdp
        self._expire = _nothing_to_expire

    # -- the clock --------------------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        deadline = self._timer.next_deadline() if self._timer is not None else None
        if deadline is not None:
            self._handle = self._core.clock.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self._timer is None:
            return
        event = self._timer.handle_timer(self._core.clock.now())
        call_id = self._dialog.call_id
        if event is SessionTimerEvent.REFRESH_DUE:
            self._core.spawn(self._refresh(), name=f"session-refresh-{call_id}")
        elif event is SessionTimerEvent.EXPIRED:
            log.info("session_expired", call_id=call_id, interval_s=self._timer.negotiated.interval_s)
            self._core.spawn(self._expire(), name=f"session-expired-{call_id}")
        self._arm()

    async def _refresh(self) -> None:
        timer = self._timer
        assert timer is not None
        asked = timer.negotiated
        try:
            response = await self._send_refresh(refresh_headers(asked, self.policy))
            raised_s = min_se_after_422(response.headers, asked.interval_s) if response.status == TOO_SMALL else None
            if raised_s is not None:  # RFC 4028 7.4: once more, with the peer's Min-SE
                asked = dataclasses.replace(asked, interval_s=raised_s)
                response = await self._send_refresh(refresh_headers(asked, self.policy, raised_s))
        except TransactionError:
            # The peer's re-INVITE is being answered: its 2xx refreshes the session instead of ours.
            log.info("session_refresh_deferred", call_id=self._dialog.call_id)
            return
        self.refreshes_sent += 1
        if response.status < 300:
            try:
                self.refreshed(negotiate_uac(response.headers, asked))
            except SipParseError:
                self.refreshed(asked)
            return
        log.info("session_refresh_failed", call_id=self._dialog.call_id, status=response.status)
        if not timer.refresh_failed(response.status):
            self._arm()

    async def _send_refresh(self, headers: HeaderList) -> Response:
        """UPDATE without a body when the peer allows it, else a re-INVITE with our current SDP."""
        via = self._core.via()
        if self.peer_allows_update:
            return await self._send(self._dialog.new_request("UPDATE", via, headers=headers), SESSION_EXPIRED)
        request = self._dialog.new_request("INVITE", via, body=self._local_sdp(), content_type=SDP, headers=headers)
        return await self._invite(request, SESSION_EXPIRED)


async def _dialog_ended(request: Request, end_reason: str) -> Response:
    raise TransactionError("the dialog has ended")


def _no_sdp() -> bytes:
    return b""


async def _nothing_to_expire() -> None:
    return None
