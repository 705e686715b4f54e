"""The user agent: UAS and UAC on one transport, with the application plugged in by callbacks.

    transport = await SipTransport.open("127.0.0.1", 5060)
    ua = UserAgent(transport, LoopClock(), on_incoming_call=handle_call,
                   accept_number=lambda dialed: dialed in flows, max_calls=500)

    async def handle_call(call: IncomingCall) -> None:     # runs as task `call-<Call-ID>`
        call.ring()
        leg = call.answer(my_sdp_answer(call.offer))        # 200 OK, retransmitted until the ACK
        event = await leg.next_event()                      # ByeReceived, DtmfReceived, ReferReceived...
        await leg.bye()

    out = ua.invite("sip:agent7@10.0.0.9:5062", sdp_offer, headers=[("X-IVR-Intent", "claims")])
    leg = await out.answered()                              # or CallFailed(status)

Admission happens before the application sees a call: 503 + Retry-After when draining or at
`max_calls`, 404 when `accept_number` refuses the dialed number, 420 for unknown `Require`
extensions, 415 for a body that is not SDP. When `on_incoming_call` returns, a call it left up is
hung up; if it raised `SdpNegotiationError` before answering, the caller gets 488 (other errors: 500).
Requests for dialogs we do not know get 481. OPTIONS are answered 200; REGISTER goes to the
`Registrar` when one is configured (else 405).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import structlog

from ivr.call import CallEnded
from ivr.clock import Clock
from ivr.sip.calls import CallFailed, IncomingCall, OutgoingCall
from ivr.sip.core import Credentials, SipCore
from ivr.sip.errors import SdpError, SipParseError
from ivr.sip.events import (
    AckTimedOut,
    Address,
    InviteCancelled,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from ivr.sip.headers import (
    ACCEPT,
    CALL_ID,
    CONTACT,
    CONTENT_TYPE,
    CSEQ,
    FROM,
    MAX_FORWARDS,
    REQUIRE,
    RETRY_AFTER,
    TO,
    UNSUPPORTED,
    VIA,
)
from ivr.sip.leg import SDP, CallLeg
from ivr.sip.message import Headers, Request, Response, new_call_id, new_tag
from ivr.sip.registrar import Registrar
from ivr.sip.registration import Registration
from ivr.sip.transaction import ClientTransaction, ServerTransaction
from ivr.sip.transport import SipTransport
from ivr.sip.uri import SipUri

log = structlog.get_logger(__name__)

IncomingCallHandler = Callable[[IncomingCall], Awaitable[None]]
SUPPORTED_EXTENSIONS = frozenset({"replaces"})
DIALOG_METHODS = frozenset({"BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK"})


class UserAgent:
    """Answers and places calls over one `SipTransport`; the application supplies the call logic."""

    def __init__(
        self,
        transport: SipTransport,
        clock: Clock,
        on_incoming_call: IncomingCallHandler | None = None,
        *,
        accept_number: Callable[[str], bool] | None = None,
        max_calls: int | None = None,
        retry_after_s: int = 30,
        credentials: Credentials | None = None,
        registrar: Registrar | None = None,
        user: str = "ivr",
        user_agent: str = "ivr",
    ) -> None:
        self.core = SipCore(transport, clock, user_agent=user_agent)
        self.transport = transport
        self.clock = clock
        self.on_incoming_call = on_incoming_call
        self.accept_number = accept_number
        """Returns False for dialed numbers we do not serve (404)."""
        self.max_calls = max_calls
        self.retry_after_s = retry_after_s
        self.credentials = credentials
        """Digest credentials for our INVITEs when a peer challenges them (401/407)."""
        self.registrar = registrar
        self.user = user
        self.draining = False
        self._incoming: dict[ServerTransaction, IncomingCall] = {}
        self._calls: dict[str, asyncio.Task[None]] = {}
        transport.set_handler(self._on_event)

    # -- application-facing ---------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """Incoming calls whose handler task is running."""
        return len(self._calls)

    @property
    def legs(self) -> list[CallLeg]:
        return list(self.core.legs.values())

    def drain(self) -> None:
        """Refuse new calls with 503 from now on; calls in progress carry on."""
        self.draining = True

    def invite(self, uri: str | SipUri, sdp_offer: bytes, *, headers: Iterable[tuple[str, str]] = (),
               from_user: str | None = None, from_display: str | None = None,
               destination: Address | None = None, credentials: Credentials | None = None) -> OutgoingCall:
        """Place a call: INVITE with `sdp_offer` to `uri` (or to `destination`, e.g. an outbound proxy).

        A user registered with our registrar is reached at their registered contact (it becomes the
        Request-URI; To keeps `uri`).
        """
        target = uri if isinstance(uri, SipUri) else SipUri.parse(uri)
        contact = self._registered_contact(target)
        request = self._new_request("INVITE", target, from_user, from_display)
        if contact is not None:
            request.uri = contact
        request.headers.add(CONTACT, self.core.contact(from_user or self.user))
        for name, value in headers:
            request.headers.add(name, value)
        request.headers.add(CONTENT_TYPE, SDP)
        request.body = sdp_offer
        call = OutgoingCall(self.core, request, destination or self.core.destination(request.uri),
                            credentials or self.credentials)
        call.start()
        log.info("call_placed", call_id=call.call_id, to=str(target))
        return call

    async def options(self, uri: str | SipUri, destination: Address | None = None) -> Response:
        """Send an out-of-dialog OPTIONS (a keep-alive ping); returns the final response (408 on timeout)."""
        target = uri if isinstance(uri, SipUri) else SipUri.parse(uri)
        request = self._new_request("OPTIONS", target, None, None)
        return await self.core.send_and_wait(request, destination or self.core.destination(target))

    def registration(self, registrar_uri: str | SipUri, credentials: Credentials, *,
                     expires_s: int = 3600, destination: Address | None = None) -> Registration:
        """A REGISTER binding of our contact at a trunk/registrar; `await reg.start()` keeps it fresh."""
        target = registrar_uri if isinstance(registrar_uri, SipUri) else SipUri.parse(registrar_uri)
        return Registration(self.core, target, credentials, expires_s=expires_s,
                            destination=destination or self.core.destination(target))

    async def close(self) -> None:
        """Hang up every leg, stop call tasks and background work (the transport stays open)."""
        self.draining = True
        legs = list(self.core.legs.values())
        if legs:
            await asyncio.gather(*(leg.bye() for leg in legs), return_exceptions=True)
        for task in list(self._calls.values()):
            task.cancel()
        if self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)
        await self.core.cancel_tasks()

    # -- event dispatch -------------------------------------------------------------------------------

    def _on_event(self, event: LayerEvent) -> None:
        if isinstance(event, RequestReceived):
            self._on_request(event.request, event.transaction, event.source)
        elif isinstance(event, ResponseReceived):
            self._on_response(event.response, event.transaction)
        elif isinstance(event, InviteCancelled):
            incoming = self._incoming.get(event.invite)
            if incoming is not None:
                incoming.on_cancel()
                task = self._calls.get(incoming.call_id)
                if task is not None:
                    task.cancel()
        elif isinstance(event, TransactionTimedOut):
            if isinstance(event.transaction, ClientTransaction):
                self.core.on_timeout(event.transaction)
        elif isinstance(event, AckTimedOut):
            for leg in list(self.core.legs.values()):
                if leg.call_id == event.call_id:
                    leg.on_ack_timeout()

    def _on_response(self, response: Response, tx: ClientTransaction | None) -> None:
        if tx is not None and self.core.on_response(response, tx):
            return
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            leg = self.core.legs.get((response.call_id, response.from_.tag or "", response.to.tag or ""))
            if leg is not None:
                leg.on_stray_ok(response)

    def _on_request(self, request: Request, tx: ServerTransaction | None, source: Address) -> None:
        to_tag = request.to.tag
        key = (request.call_id, to_tag or "", request.from_.tag or "")
        if tx is None:  # ACK to a 2xx
            leg = self.core.legs.get(key)
            if leg is not None:
                leg.on_ack(request)
            return
        method = request.method
        if to_tag is not None:
            leg = self.core.legs.get(key)
            if leg is not None:
                leg.on_request(request, tx)
            elif method == "OPTIONS":
                self.core.respond(tx, 200)
            else:
                self.core.respond(tx, 481)
            return
        if method == "INVITE":
            self._on_invite(request, tx, source)
        elif method == "OPTIONS":
            self.core.respond(tx, 200)
        elif method == "REGISTER" and self.registrar is not None:
            self.transport.send_response(tx, self.registrar.handle(request, self.clock.now()))
        elif method in DIALOG_METHODS:
            self.core.respond(tx, 481)
        else:
            self.core.respond(tx, 405)

    def _on_invite(self, request: Request, tx: ServerTransaction, source: Address) -> None:
        local_tag = new_tag()
        refusal = self._admission(request)
        if refusal is not None:
            status, reason, headers = refusal
            self.core.respond(tx, status, reason, to_tag=local_tag, headers=headers)
            log.info("call_refused", call_id=request.call_id, status=status)
            return
        incoming = IncomingCall(self.core, request, tx, source, local_tag)
        self._incoming[tx] = incoming
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run_call(incoming), name=f"call-{request.call_id}")
        self._calls[request.call_id] = task

    def _admission(self, request: Request) -> tuple[int, str | None, list[tuple[str, str]]] | None:
        if self.draining:
            return 503, "Draining", [(RETRY_AFTER, str(self.retry_after_s))]
        if self.on_incoming_call is None:
            return 480, None, []
        if self.max_calls is not None and len(self._calls) >= self.max_calls:
            return 503, "Too Busy", [(RETRY_AFTER, str(self.retry_after_s))]
        required = request.headers.get_all(REQUIRE)
        unsupported = [ext for ext in required if ext.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported:
            return 420, None, [(UNSUPPORTED, ", ".join(unsupported))]
        if request.body and request.content_type != SDP:
            return 415, None, [(ACCEPT, SDP)]
        if not request.headers.get_all(CONTACT):
            return 400, "Missing Contact header", []
        if self.accept_number is not None and not self.accept_number(request.uri.user or ""):
            return 404, None, []
        return None

    async def _run_call(self, incoming: IncomingCall) -> None:
        structlog.contextvars.bind_contextvars(call_id=incoming.call_id)
        log.info("invite_received", caller=incoming.caller, dialed=incoming.dialed)
        try:
            assert self.on_incoming_call is not None
            await self.on_incoming_call(incoming)
        except SdpError as exc:
            log.info("call_sdp_refused", reason=str(exc))
            incoming.reject(exc.status_hint, str(exc))
        except (CallEnded, CallFailed, asyncio.CancelledError):
            pass
        except SipParseError as exc:
            incoming.reject(exc.status_hint, exc.reason)
        except Exception:  # the per-call task boundary: the caller gets a 500, the engine carries on
            log.exception("incoming_call_failed")
            incoming.reject(500)
        finally:
            if not incoming.finished and not incoming.cancelled.is_set():
                incoming.reject(480)
            if incoming.leg is not None and not incoming.leg.ended:
                await asyncio.shield(incoming.leg.bye())
            self._incoming.pop(incoming.transaction, None)
            self._calls.pop(incoming.call_id, None)

    # -- helpers --------------------------------------------------------------------------------------

    def _new_request(self, method: str, target: SipUri, from_user: str | None, from_display: str | None
                     ) -> Request:
        host, port = self.transport.local_address
        display = f'"{from_display}" ' if from_display else ""
        headers = Headers()
        headers.add(VIA, self.core.via())
        headers.add(MAX_FORWARDS, "70")
        headers.add(FROM, f"{display}<sip:{from_user or self.user}@{host}:{port}>;tag={new_tag()}")
        headers.add(TO, f"<{target}>")
        headers.add(CALL_ID, new_call_id(host))
        headers.add(CSEQ, f"1 {method}")
        return Request(method, target, headers)

    def _registered_contact(self, target: SipUri) -> SipUri | None:
        if self.registrar is None or not target.user:
            return None
        bindings = self.registrar.lookup(target.user, self.clock.now())
        return bindings[0].contact if bindings else None
