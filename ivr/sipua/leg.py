"""A call leg: one confirmed INVITE dialog as the application sees it (asyncio).

The leg drives a `Dialog` that sits in the `SipEndpoint`'s table: it answers the peer's in-dialog requests
(re-INVITE, INFO, REFER, NOTIFY, OPTIONS, UPDATE) and queues what happened as dialog events
(`next_event()`), and it sends ours (`bye()`, `reinvite()`, `hold()`, `info()`, `send_dtmf()`, `refer()`,
`notify_refer()`). The endpoint does the rest below it: CSeq order and glare, the peer's BYE, our 2xx
retransmitted until its ACK (and BYE without one), our ACK re-sent for each copy of the peer's 2xx.

SDP is opaque here except for hold detection and direction changes, both through `ivr.sip.hold`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import structlog

from ivr.call import CallEnded, TransferResult
from ivr.sip.admission import SDP, SUPPORTED_HEADER
from ivr.sip.dialog import Dialog, dtmf_relay_body, parse_dtmf_info
from ivr.sip.errors import SdpError, SipError, SipParseError
from ivr.sip.events import (
    ByeReceived,
    DialogEndReason,
    DialogEvent,
    DtmfInfoReceived,
    InfoReceived,
    ReinviteReceived,
)
from ivr.sip.headers import CONTACT, CONTENT_TYPE, REASON, SUPPORTED
from ivr.sip.hold import is_hold, offered_direction, with_direction
from ivr.sip.message import Request, Response
from ivr.sip.sdp import Direction
from ivr.sip.sessiontimer import TOO_SMALL, TOO_SMALL_REASON, Negotiated
from ivr.sip.transaction import ServerTransaction
from ivr.sipua.core import SipCore
from ivr.sipua.refresher import SESSION_EXPIRED, SessionRefresher
from ivr.sipua.transfer import LegTransfers

log = structlog.get_logger(__name__)

OfferHandler = Callable[[bytes], bytes]
"""Answers a peer's SDP offer in a re-INVITE (raise SdpNegotiationError for 488)."""


class ReinviteFailed(SipError):
    """Our re-INVITE got a final failure; the call goes on with the previous session."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"re-INVITE refused: {status} {reason}")
        self.status = status


class CallLeg:
    """One answered (or answering) call: dialog, SDP on both sides, events, in-dialog requests."""

    def __init__(self, core: SipCore, dialog: Dialog, *, local_sdp: bytes, remote_sdp: bytes,
                 session: Negotiated | None = None, peer_allow: list[str] | None = None) -> None:
        """`session`: the session timer the INVITE's 2xx agreed (RFC 4028); `peer_allow`: the methods the
        peer's INVITE or 2xx listed in Allow (UPDATE there: we refresh by UPDATE)."""
        self.core = core
        self.dialog = dialog
        self.local_sdp = local_sdp
        """Our current session description (the last offer or answer we sent)."""
        self.remote_sdp = remote_sdp
        """The peer's current session description."""
        self.offer_handler: OfferHandler | None = None
        """Answers re-INVITE offers; when None we answer with our SDP, direction mirrored."""
        self.end_reason: str | None = None
        self._events: asyncio.Queue[DialogEvent | None] = asyncio.Queue()  # None: the call ended
        self._ended = asyncio.Event()
        self._acked = asyncio.Event()
        self._confirm_waiters: list[asyncio.Future[None]] = []
        """`confirmed()` callers, woken by the ACK or the end (one future each, no task)."""
        if not dialog.is_uas:
            self._acked.set()  # a call we placed is confirmed by the 2xx we ACKed
        self.transfers = LegTransfers(core, dialog, self._request, self._events.put_nowait, lambda: self.ended)
        """REFER both ways and the NOTIFYs that follow them (`ivr.sipua.transfer`)."""
        self.session = SessionRefresher(
            core, dialog, core.session_timer, session,
            peer_allows_update="UPDATE" in (method.strip().upper() for method in peer_allow or ()),
            send=self._request, invite=self._invite_and_ack, local_sdp=lambda: self.local_sdp,
            expire=lambda: self.bye('SIP;cause=408;text="Session expired"', end_reason=SESSION_EXPIRED),
        )
        """The session timer (`ivr.sipua.refresher`): our refreshes, and BYE when the peer's stop."""

    def __repr__(self) -> str:
        return f"<CallLeg {self.call_id} {self.dialog.state.name}>"

    # -- what the application reads -------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> str:
        """Return once the call is over (either side hung up); the reason, e.g. `remote_bye`."""
        await self._ended.wait()
        return self.end_reason or "ended"

    async def confirmed(self) -> None:
        """Return once the ACK to our 2xx arrived (`remote_sdp` then holds an answer the ACK carried), at once
        for a call we placed; raises CallEnded if the dialog ended first (no ACK in time, or a BYE)."""
        if not self._acked.is_set() and not self._ended.is_set():
            # One future woken from on_ack/_finish rather than two tasks and an `asyncio.wait` (issue 22).
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirm_waiters.append(waiter)
            try:
                await waiter
            finally:
                self._confirm_waiters.remove(waiter)
        if not self._acked.is_set():
            raise CallEnded(f"call {self.call_id} ended before the ACK: {self.end_reason}")

    async def next_event(self) -> DialogEvent:
        """The next thing the peer did: ByeReceived, DtmfInfoReceived, ReinviteReceived, ReferReceived...

        Raises CallEnded once the call is over and every event before the end has been taken.
        """
        event = await self._events.get()
        if event is None:
            self._events.put_nowait(None)
            raise CallEnded(f"call {self.call_id} ended: {self.end_reason}")
        return event

    def pending_events(self) -> list[DialogEvent]:
        """Take every queued event without waiting."""
        out: list[DialogEvent] = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is None:
                self._events.put_nowait(None)
                break
            out.append(event)
        return out

    # -- what the application does --------------------------------------------------------------------

    async def bye(self, reason: str | None = None, *, end_reason: str = "local_bye") -> None:
        """Hang up (idempotent); waits for the peer's answer to the BYE or its timeout. `reason` is the
        BYE's Reason header, `end_reason` what `wait_ended` says (`session_expired`: the peer stopped
        refreshing)."""
        if self.ended:
            return
        headers = [(REASON, reason)] if reason else []
        request = self.dialog.new_request("BYE", self.core.via(), headers=headers)
        self._finish(end_reason)
        await self.core.send_and_wait(request, self.core.destination(self.dialog.next_hop()))

    async def reinvite(self, sdp: bytes) -> bytes:
        """Send a re-INVITE offering `sdp`; return the peer's answer. Retries once after 491 glare."""
        for attempt in range(2):
            request = self.dialog.new_request("INVITE", self.core.via(), body=sdp, content_type=SDP)
            response = await self._invite_and_ack(request)
            if response.status < 300:
                self.local_sdp = sdp
                if response.body:
                    self.remote_sdp = response.body
                return self.remote_sdp
            if response.status != 491 or attempt:
                raise ReinviteFailed(response.status, response.reason)
            # RFC 3261 14.1: the Call-ID owner waits 2.1-4 s, the other side 0-2 s.
            wait_s = random.uniform(0.0, 2.0) if self.dialog.is_uas else random.uniform(2.1, 4.0)
            await self.core.clock.sleep_until(self.core.clock.now() + wait_s)
        raise AssertionError("unreachable")

    async def hold(self) -> bytes:
        """Put the peer on hold (our SDP becomes sendonly)."""
        return await self.reinvite(with_direction(self.local_sdp, Direction.SENDONLY))

    async def unhold(self) -> bytes:
        return await self.reinvite(with_direction(self.local_sdp, Direction.SENDRECV))

    async def info(self, body: bytes, content_type: str) -> int:
        """Send an INFO; returns the final status."""
        request = self.dialog.new_request("INFO", self.core.via(), body=body, content_type=content_type)
        return (await self._request(request)).status

    async def send_dtmf(self, digit: str, duration_ms: int = 160) -> int:
        return await self.info(dtmf_relay_body(digit, duration_ms), "application/dtmf-relay")

    async def options(self) -> int:
        request = self.dialog.new_request("OPTIONS", self.core.via())
        return (await self._request(request)).status

    async def refer(self, target: str, *, timeout_s: float = 32.0) -> TransferResult:
        """Blind transfer: REFER the peer to `target` (a URI, or a `<uri?Replaces=...>` Refer-To value)
        and follow its NOTIFYs to a final status."""
        return await self.transfers.refer(target, timeout_s=timeout_s)

    async def notify_refer(self, status: int, reason: str) -> None:
        """Report the progress of a transfer the peer asked of us (NOTIFY with message/sipfrag)."""
        await self.transfers.notify(status, reason)

    # -- what the user agent calls ------------------------------------------------------------------

    def on_ack(self, ack: Request) -> None:
        """The ACK to our 2xx arrived (the endpoint matched it and stopped retransmitting)."""
        if ack.body and ack.content_type == SDP:
            self.remote_sdp = ack.body  # we offered in the 2xx, the peer answered in the ACK
        self._acked.set()
        self._wake_confirmed()

    def on_ended(self, reason: DialogEndReason, bye: Request | None) -> None:
        """The endpoint ended the dialog: the peer's BYE (answered), or no ACK for our 2xx (BYE sent)."""
        if reason is DialogEndReason.REMOTE_BYE:
            self._events.put_nowait(ByeReceived(bye.headers.get(REASON) if bye is not None else None))
        else:
            log.info("sip_ack_timed_out", call_id=self.call_id)
        self._finish(reason.value)

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        """A request the peer sent in this dialog (the endpoint already vetted its CSeq and glare)."""
        handlers = {
            "INVITE": self._on_invite, "UPDATE": self._on_update, "INFO": self._on_info,
            "OPTIONS": self._on_options, "REFER": self.transfers.on_refer, "NOTIFY": self.transfers.on_notify,
        }
        handler = handlers.get(request.method)
        if handler is None:
            self.core.respond(tx, 501)
            return
        handler(request, tx)

    # -- in-dialog requests from the peer -------------------------------------------------------------

    def _on_invite(self, request: Request, tx: ServerTransaction) -> None:
        offer = request.body
        try:
            timer = self.session.answer(request)
            answer = self._answer(offer) if offer else self.local_sdp
        except (SdpError, SipParseError) as exc:
            self.dialog.reinvite_answered()
            self.core.respond(tx, exc.status_hint if offer or isinstance(exc, SipParseError) else 400, str(exc))
            return
        if timer.negotiated is None:
            self.dialog.reinvite_answered()
            self.core.respond(tx, TOO_SMALL, TOO_SMALL_REASON, headers=timer.headers)
            return
        self.core.respond(tx, 200, headers=[(CONTACT, self.dialog.local_contact), (SUPPORTED, SUPPORTED_HEADER),
                                            *timer.headers], body=answer, content_type=SDP)
        self.dialog.reinvite_answered()
        self.session.refreshed(timer.negotiated)
        if offer:
            self.remote_sdp = offer
        self.local_sdp = answer
        self._events.put_nowait(ReinviteReceived(offer, answer, is_hold(offer)))

    def _on_update(self, request: Request, tx: ServerTransaction) -> None:
        try:
            timer = self.session.answer(request)
            answer = self._answer(request.body) if request.body else b""
        except (SdpError, SipParseError) as exc:
            self.core.respond(tx, exc.status_hint, str(exc))
            return
        if timer.negotiated is None:
            self.core.respond(tx, TOO_SMALL, TOO_SMALL_REASON, headers=timer.headers)
            return
        headers = [(CONTACT, self.dialog.local_contact), (SUPPORTED, SUPPORTED_HEADER), *timer.headers]
        if not request.body:  # a refresh without an offer (RFC 4028 9): no SDP back
            self.core.respond(tx, 200, headers=headers)
            self.session.refreshed(timer.negotiated)
            return
        self.remote_sdp, self.local_sdp = request.body, answer
        self.core.respond(tx, 200, headers=headers, body=answer, content_type=SDP)
        self.session.refreshed(timer.negotiated)
        self._events.put_nowait(ReinviteReceived(request.body, answer, is_hold(request.body)))

    def _on_info(self, request: Request, tx: ServerTransaction) -> None:
        self.core.respond(tx, 200)
        content_type = request.headers.get(CONTENT_TYPE) or ""
        dtmf = parse_dtmf_info(content_type, request.body)
        if dtmf is not None:
            self._events.put_nowait(DtmfInfoReceived(dtmf[0], dtmf[1]))
        elif request.body:
            self._events.put_nowait(InfoReceived(content_type, request.body))

    def _on_options(self, request: Request, tx: ServerTransaction) -> None:
        self.core.respond(tx, 200)

    # -- internals ------------------------------------------------------------------------------------

    async def _request(self, request: Request, gone_reason: str | None = None) -> Response:
        """Send an in-dialog request; a 408/481 ends the leg (`gone_reason`, else `remote_gone_<status>`)."""
        response = await self.core.send_and_wait(request, self.core.destination(self.dialog.next_hop()))
        self.dialog.receive_response(response, request.method)
        if self.dialog.terminated and not self.ended:
            self._finish(gone_reason or f"remote_gone_{response.status}")
        return response

    async def _invite_and_ack(self, request: Request, gone_reason: str | None = None) -> Response:
        response = await self._request(request, gone_reason)
        if 200 <= response.status < 300:
            self.core.send_ack(self.dialog, self.dialog.ack(request.cseq.seq, self.core.via()))
        return response

    def _answer(self, offer: bytes) -> bytes:
        if self.offer_handler is not None:
            return self.offer_handler(offer)
        return with_direction(self.local_sdp, offered_direction(offer).mirrored())

    def _wake_confirmed(self) -> None:
        for waiter in self._confirm_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _finish(self, reason: str) -> None:
        if self.ended:
            return
        self.end_reason = reason
        self.session.stop()
        self.core.end_dialog(self.dialog)
        self.core.legs.pop(self.dialog.key, None)
        self._ended.set()
        self._wake_confirmed()
        self._events.put_nowait(None)
        self.transfers.leg_ended()
        log.info("call_leg_ended", call_id=self.call_id, reason=reason)
