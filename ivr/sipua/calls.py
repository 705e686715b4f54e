"""Calls being set up: an `IncomingCall` we may ring, answer or reject; an `OutgoingCall` we placed.

Both end in a `CallLeg` once answered. The UAS side is handed to the application's
`on_incoming_call`; the UAC side comes back from `UserAgent.invite()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from ivr.call import CallEnded
from ivr.sip.admission import SDP
from ivr.sip.authorize import Credentials, authorized_retry
from ivr.sip.builders import build_cancel
from ivr.sip.dialog import Dialog
from ivr.sip.errors import SipError, SipParseError
from ivr.sip.events import Address, CallOffered
from ivr.sip.headers import ALLOW, CONTACT
from ivr.sip.message import Request, Response
from ivr.sip.sdp import SessionDescription
from ivr.sip.sessiontimer import TOO_SMALL, negotiate_uac, negotiate_uas, retry_after_422
from ivr.sip.transaction import TxState
from ivr.sipua.core import SipCore
from ivr.sipua.leg import CallLeg

log = structlog.get_logger(__name__)


class CallFailed(SipError):
    """An outgoing call ended without being answered: the final status says why (408 on timeout)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"call failed: {status} {reason}")
        self.status = status
        self.reason = reason


class IncomingCall:
    """An INVITE we received and have not answered yet (its transaction sends 100 Trying if we take 200 ms)."""

    def __init__(self, core: SipCore, offered: CallOffered) -> None:
        self.core = core
        self.offered = offered
        self.request = offered.request
        self.transaction = offered.transaction
        self.source = offered.source
        self.local_tag = offered.local_tag
        self.cancelled = asyncio.Event()
        """Set when the caller sent CANCEL (we answered 487) before we answered."""
        self.leg: CallLeg | None = None
        self.final_status = 0

    @property
    def call_id(self) -> str:
        return self.request.call_id

    @property
    def caller(self) -> str:
        """User part of From (the caller's number), or its host when there is none."""
        uri = self.request.from_.uri
        return uri.user or uri.host

    @property
    def dialed(self) -> str:
        """User part of the Request-URI (the number dialed)."""
        return self.request.uri.user or ""

    @property
    def offer(self) -> bytes:
        """The caller's SDP offer as bytes (empty when the caller wants us to offer); prefer `offer_sdp`."""
        return self.request.body

    @property
    def offer_sdp(self) -> SessionDescription | None:
        """The caller's SDP offer, parsed once by the endpoint (None when the caller wants us to offer).

        Shared with the endpoint's event: read it, do not change it in place.
        """
        return self.offered.offer

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def finished(self) -> bool:
        """A final response has been sent (answered, rejected or cancelled)."""
        return self.final_status >= 200

    def ring(self, sdp: bytes | None = None) -> None:
        """Send 180 Ringing (or 183 Session Progress with early-media SDP)."""
        self._check_open()
        status, body = (183, sdp) if sdp else (180, b"")
        self.core.respond(self.transaction, status, to_tag=self.local_tag,
                          headers=[(CONTACT, self.core.contact())], body=body or b"",
                          content_type=SDP if body else None)

    def reject(self, status: int, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Refuse the call with a 3xx-6xx (e.g. 486 busy, 503 with Retry-After, 488 bad SDP)."""
        if self.finished:
            return
        self.final_status = status
        self.core.respond(self.transaction, status, reason, to_tag=self.local_tag, headers=headers)

    def answer(self, sdp_answer: bytes, headers: Iterable[tuple[str, str]] = ()) -> CallLeg:
        """Send 200 OK with our SDP; the returned leg retransmits it until the caller's ACK."""
        self._check_open()
        timer = negotiate_uas(self.request.headers, self.core.session_timer)  # admission vetted it (422, 400)
        dialog = self.core.answer(self.offered, sdp_answer, [*headers, *timer.headers])
        self.final_status = 200
        leg = CallLeg(self.core, dialog, local_sdp=sdp_answer, remote_sdp=self.request.body,
                      session=timer.negotiated, peer_allow=self.request.headers.get_all(ALLOW))
        self.core.legs[dialog.key] = leg
        self.leg = leg
        return leg

    def on_cancel(self) -> None:
        """The endpoint matched a CANCEL to our INVITE and answered it 487: tell the application."""
        self.final_status = 487
        self.cancelled.set()

    def _check_open(self) -> None:
        if self.cancelled.is_set():
            raise CallEnded(f"call {self.call_id} was cancelled by the caller")
        if self.finished or self.transaction.state is not TxState.PROCEEDING:
            raise CallEnded(f"call {self.call_id} already got its final response ({self.final_status})")


class OutgoingCall:
    """An INVITE we sent: await `answered()` for the leg, `cancel()` to give up."""

    def __init__(self, core: SipCore, invite: Request, destination: Address,
                 credentials: Credentials | None) -> None:
        self.core = core
        self.invite = invite
        self.destination = destination
        self.credentials = credentials
        self.ringing = asyncio.Event()
        """Set on 180/183."""
        self.early_sdp: bytes | None = None
        self.final_status = 0
        self._result: asyncio.Future[CallLeg] = asyncio.get_running_loop().create_future()
        self._provisional = False
        self._cancel_requested = False
        self._cancel_sent = False
        self._auth_tried = False
        self._timer_retried = False
        self._leg: CallLeg | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def start(self) -> None:
        self.core.send(self.invite, self.destination, self._on_response)

    async def answered(self) -> CallLeg:
        """The leg once the callee answers; raises CallFailed with the final status otherwise."""
        return await asyncio.shield(self._result)

    async def cancel(self) -> None:
        """Give up ringing (CANCEL, the callee answers 487). A call answered meanwhile is hung up."""
        self._cancel_requested = True
        if self._provisional and not self._result.done() and not self._cancel_sent:
            self._send_cancel()
        try:
            leg = await asyncio.shield(self._result)
        except CallFailed:
            return
        await leg.bye()

    # -- responses ------------------------------------------------------------------------------------

    def _on_response(self, response: Response) -> None:
        status = response.status
        if status < 200:
            self._provisional = True
            if status in (180, 183):
                self.ringing.set()
                if response.body:
                    self.early_sdp = response.body
            if self._cancel_requested and not self._cancel_sent and not self._result.done():
                self._send_cancel()
            return
        self.final_status = status
        if status < 300:
            self._on_success(response)
        elif status in (401, 407) and self.credentials is not None and not self._auth_tried:
            retry = authorized_retry(self.invite, response, self.credentials, via=self.core.via())
            if retry is not None:
                self._auth_tried = True
                self._provisional = False
                self.invite = retry
                self.core.send(retry, self.destination, self._on_response)
                return
            self._fail(response)
        elif status == TOO_SMALL and not self._timer_retried:
            retry = retry_after_422(self.invite, response, self.core.session_timer, via=self.core.via())
            if retry is None:
                self._fail(response)
                return
            self._timer_retried = True  # RFC 4028 7.4: once, with the callee's Min-SE
            self._provisional = False
            self.invite = retry
            self.core.send(retry, self.destination, self._on_response)
        else:
            self._fail(response)

    def _on_success(self, response: Response) -> None:
        if self._leg is not None:
            return  # a 2xx of another fork: only the first one makes the call
        dialog = Dialog.as_uac(self.invite, response, self.core.contact())
        try:
            session = negotiate_uac(response.headers)
        except SipParseError:
            session = None  # a malformed Session-Expires in the callee's 2xx: no timer rather than no call
        leg = CallLeg(self.core, dialog, local_sdp=self.invite.body, remote_sdp=response.body, session=session,
                      peer_allow=response.headers.get_all(ALLOW))
        self._leg = leg
        self.core.legs[dialog.key] = leg
        self.core.endpoint.add_dialog(dialog)
        self.core.send_ack(dialog, dialog.ack(self.invite.cseq.seq, self.core.via()))
        if not self._result.done():
            self._result.set_result(leg)

    def _fail(self, response: Response) -> None:
        if not self._result.done():
            self._result.set_exception(CallFailed(response.status, response.reason))
            self._result.exception()  # mark retrieved: a caller that never awaits is not an error

    def _send_cancel(self) -> None:
        self.core.send(build_cancel(self.invite), self.destination, lambda response: None)
        self._cancel_sent = True  # one CANCEL per INVITE
        log.info("call_cancelled", call_id=self.call_id)
