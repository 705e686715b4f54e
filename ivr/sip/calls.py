"""Calls being set up: an `IncomingCall` we may ring, answer or reject; an `OutgoingCall` we placed.

Both end in a `CallLeg` once answered. The UAS side is handed to the application's
`on_incoming_call`; the UAC side comes back from `UserAgent.invite()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from ivr.call import CallEnded
from ivr.sip.core import ALLOWED_METHODS, Credentials, SipCore
from ivr.sip.dialog import Dialog, DialogInput
from ivr.sip.errors import SipError
from ivr.sip.events import Address
from ivr.sip.headers import ALLOW, CONTACT, CSEQ, MAX_FORWARDS, ROUTE, SUPPORTED, TO, VIA
from ivr.sip.leg import SDP, CallLeg
from ivr.sip.message import Headers, Request, Response
from ivr.sip.transaction import ServerTransaction, TxState

log = structlog.get_logger(__name__)


class CallFailed(SipError):
    """An outgoing call ended without being answered: the final status says why (408 on timeout)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"call failed: {status} {reason}")
        self.status = status
        self.reason = reason


class IncomingCall:
    """An INVITE we received and have not answered yet (100 Trying is already sent)."""

    def __init__(self, core: SipCore, request: Request, transaction: ServerTransaction, source: Address,
                 local_tag: str) -> None:
        self.core = core
        self.request = request
        self.transaction = transaction
        self.source = source
        self.local_tag = local_tag
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
        """The caller's SDP offer (empty when the caller wants us to offer)."""
        return self.request.body

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
        contact = self.core.contact()
        dialog = Dialog.as_uas(self.request, self.local_tag, contact)
        extra = [(CONTACT, contact), (ALLOW, ALLOWED_METHODS), (SUPPORTED, "replaces"), *headers]
        response = self.core.respond(self.transaction, 200, to_tag=self.local_tag, headers=extra,
                                     body=sdp_answer, content_type=SDP)
        self.final_status = 200
        dialog.move(DialogInput.SUCCESS)
        leg = CallLeg(self.core, dialog, local_sdp=sdp_answer, remote_sdp=self.request.body)
        self.core.legs[dialog.key] = leg
        leg.start_ok_retransmission(response, self.transaction.remote)
        self.leg = leg
        return leg

    def on_cancel(self) -> None:
        """The layer matched a CANCEL to our INVITE: answer 487 and tell the application."""
        if not self.finished:
            self.reject(487)
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
            retry = self.core.authorized_retry(self.invite, response, self.credentials)
            if retry is not None:
                self._auth_tried = True
                self._provisional = False
                self.invite = retry
                self.core.send(retry, self.destination, self._on_response)
                return
            self._fail(response)
        else:
            self._fail(response)

    def _on_success(self, response: Response) -> None:
        if self._leg is not None:
            self._leg.on_stray_ok(response)
            return
        dialog = Dialog.as_uac(self.invite, response, self.core.contact())
        leg = CallLeg(self.core, dialog, local_sdp=self.invite.body, remote_sdp=response.body)
        self._leg = leg
        self.core.legs[dialog.key] = leg
        ack = dialog.ack(self.invite.cseq.seq, self.core.via())
        leg.remember_ack(ack, self.core.destination(dialog.next_hop()))
        if not self._result.done():
            self._result.set_result(leg)

    def _fail(self, response: Response) -> None:
        if not self._result.done():
            self._result.set_exception(CallFailed(response.status, response.reason))
            self._result.exception()  # mark retrieved: a caller that never awaits is not an error

    def _send_cancel(self) -> None:
        """CANCEL: same Request-URI, Call-ID, From, To, CSeq number and top Via as the INVITE (9.1)."""
        invite = self.invite
        headers = Headers()
        headers.add(VIA, invite.headers.get_all(VIA)[0])
        headers.add(MAX_FORWARDS, "70")
        for name in ("From", TO, "Call-ID"):
            headers.add(name, invite.headers.get(name) or "")
        headers.add(CSEQ, f"{invite.cseq.seq} CANCEL")
        for route in invite.headers.get_all(ROUTE):
            headers.add(ROUTE, route)
        cancel = Request("CANCEL", invite.uri, headers)
        self.core.send(cancel, self.destination, lambda response: None)
        self._cancel_sent = True  # one CANCEL per INVITE
        log.info("call_cancelled", call_id=self.call_id)
