"""The user agent: UAS and UAC on one transport, with the application plugged in by callbacks.

    transport = await SipTransport.open("127.0.0.1", 5060)
    ua = UserAgent(transport, LoopClock(), on_incoming_call=handle_call,
                   accept_number=lambda dialed: dialed in flows, max_calls=500)

    async def handle_call(call: IncomingCall) -> None:     # runs as task `call-<Call-ID>`
        call.ring()
        leg = call.answer(my_sdp_answer(call.offer))        # 200 OK, retransmitted until the ACK
        event = await leg.next_event()                      # ByeReceived, DtmfInfoReceived, ReferReceived...
        await leg.bye()

    out = ua.invite("sip:agent7@10.0.0.9:5062", sdp_offer, headers=[("X-IVR-Intent", "claims")])
    leg = await out.answered()                              # or CallFailed(status)

Admission happens in the pure `SipEndpoint` before the application sees a call: 503 + Retry-After when
draining or at `max_calls`, 404 when `accept_number` refuses the dialed number, 420 for unknown `Require`
extensions, 415 for a body that is not SDP, 400 for bad SDP. When `on_incoming_call` returns, a call it
left up is hung up; if it raised `SdpNegotiationError` before answering, the caller gets 488 (other
errors: 500). The endpoint also answers CANCEL (487), BYE, OPTIONS, REGISTER (to the `Registrar` when one
is configured, else 405) and requests for unknown dialogs (481), and matches ACKs to our 2xx.

Calling an agent registered through a proxy: `invite()` resolves a user registered with our registrar to
their binding, and sends to its contact through the binding's Path (RFC 3327) as the route set.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence

import structlog

from ivr.call import CallEnded
from ivr.clock import Clock
from ivr.sip.admission import SDP
from ivr.sip.authorize import Credentials
from ivr.sip.dialog import address_of
from ivr.sip.edge import SipEdge
from ivr.sip.endpoint import ALLOWED_METHODS
from ivr.sip.errors import SdpError, SipParseError
from ivr.sip.events import (
    AckReceived,
    Address,
    CallCancelled,
    CallOffered,
    DialogEnded,
    DialogRequestReceived,
    EndpointEvent,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from ivr.sip.headers import ALLOW, CALL_ID, CONTACT, CONTENT_TYPE, CSEQ, FROM, MAX_FORWARDS, ROUTE, TO, VIA, NameAddr
from ivr.sip.hostport import format_hostport
from ivr.sip.message import Headers, Request, Response, new_call_id, new_tag
from ivr.sip.registrar import Binding, Registrar
from ivr.sip.sessiontimer import TimerPolicy, offer_headers
from ivr.sip.transaction import ClientTransaction, ServerTransaction
from ivr.sip.transport import SipTransport
from ivr.sip.uri import SipUri, unescape
from ivr.sipua.calls import CallFailed, IncomingCall, OutgoingCall
from ivr.sipua.core import SipCore
from ivr.sipua.leg import CallLeg
from ivr.sipua.registration import Registration

log = structlog.get_logger(__name__)

IncomingCallHandler = Callable[[IncomingCall], Awaitable[None]]


BYE_WAIT_S = 4.0
"""How long `close` waits for its BYEs' answers. A live peer answers in milliseconds (and three
retransmissions fit in 3.5 s on a lossy line); a vanished one would hold a shutdown for Timer F's 32 s."""


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
        edge: SipEdge | None = None,
        user: str = "ivr",
        user_agent: str = "ivr",
        session_timer: TimerPolicy | None = None,
    ) -> None:
        """`session_timer`: the RFC 4028 numbers of our calls (None: 1800 s asked, 90 s Min-SE)."""
        self.core = SipCore(transport, clock, user_agent=user_agent)
        if session_timer is not None:
            self.core.session_timer = session_timer
            transport.endpoint.admission.session_timer = session_timer
        self.transport = transport
        self.endpoint = transport.endpoint
        self.clock = clock
        self.on_incoming_call = on_incoming_call
        admission = self.endpoint.admission
        admission.accepting = on_incoming_call is not None
        admission.accept_number = accept_number
        admission.max_calls = max_calls
        admission.retry_after_s = retry_after_s
        self.endpoint.registrar = registrar
        self.endpoint.edge = edge
        self.credentials = credentials
        """Digest credentials for our INVITEs when a peer challenges them (401/407)."""
        self.registrar = registrar
        self.user = user
        self._incoming: dict[ServerTransaction, IncomingCall] = {}
        self._calls: dict[str, asyncio.Task[None]] = {}
        transport.set_handler(self._on_event)

    # -- application-facing ---------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.endpoint.admission.draining

    @property
    def legs(self) -> list[CallLeg]:
        return list(self.core.legs.values())

    def drain(self) -> None:
        """Refuse new calls with 503 from now on; calls in progress carry on."""
        self.endpoint.admission.draining = True

    def invite(self, uri: str | SipUri, sdp_offer: bytes, *, headers: Iterable[tuple[str, str]] = (),
               from_user: str | None = None, from_display: str | None = None,
               destination: Address | None = None, credentials: Credentials | None = None,
               route: Sequence[str] | None = None) -> OutgoingCall:
        """Place a call: INVITE with `sdp_offer` to `uri` (or to `destination`, e.g. an outbound proxy).

        A user registered with our registrar is reached at their registered contact (it becomes the
        Request-URI; To keeps `uri`) through the Path they registered with (RFC 3327). `route` (Route
        header values, first hop first) overrides that route set; the request goes to its first hop.
        Route headers carried in `uri` itself (RFC 3261 19.1.5: `sip:a@host?Route=%3Csip:proxy;lr%3E`,
        how a cluster node reaches an agent registered through another node) are that route set when
        `route` is not given; other URI headers are ignored.
        """
        target = uri if isinstance(uri, SipUri) else SipUri.parse(uri)
        if target.headers:
            if route is None:
                route = [unescape(v) for n, v in target.headers if n.lower() == ROUTE.lower()] or None
            target = dataclasses.replace(target, headers=())
        binding = self._binding(target)
        request = self._new_request("INVITE", target, from_user, from_display)
        if binding is not None:
            request.uri = binding.contact
            if route is None:
                route = binding.route_set
        for value in route or ():
            request.headers.add(ROUTE, value)
        request.headers.add(CONTACT, self.core.contact(from_user or self.user))
        request.headers.add(ALLOW, ALLOWED_METHODS)  # UPDATE among them: the callee refreshes without SDP
        for name, value in (*offer_headers(self.core.session_timer), *headers):
            request.headers.add(name, value)
        request.headers.add(CONTENT_TYPE, SDP)
        request.body = sdp_offer
        if destination is None:
            next_hop = NameAddr.parse(route[0], header=ROUTE).uri if route else request.uri
            destination = address_of(next_hop)
        call = OutgoingCall(self.core, request, destination, credentials or self.credentials)
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
        self.endpoint.admission.draining = True
        legs = list(self.core.legs.values())
        if legs:
            await self._hang_up(legs)
        for task in list(self._calls.values()):
            task.cancel()
        if self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)
        await self.core.cancel_tasks()

    async def _hang_up(self, legs: Sequence[CallLeg]) -> None:
        """BYE every leg; wait for their answers at most `BYE_WAIT_S` (each leg has ended either way)."""
        byes = asyncio.gather(*(leg.bye() for leg in legs), return_exceptions=True)
        give_up = asyncio.ensure_future(self.clock.sleep_until(self.clock.now() + BYE_WAIT_S))
        await asyncio.wait((byes, give_up), return_when=asyncio.FIRST_COMPLETED)
        for waiting in (byes, give_up):
            waiting.cancel()
        await asyncio.gather(byes, give_up, return_exceptions=True)

    # -- event dispatch -------------------------------------------------------------------------------

    def _on_event(self, event: EndpointEvent) -> None:
        if isinstance(event, ResponseReceived):
            if event.transaction is not None:
                self.core.on_response(event.response, event.transaction)
        elif isinstance(event, CallOffered):
            self._on_offered(event)
        elif isinstance(event, DialogRequestReceived):
            leg = self.core.legs.get(event.key)
            if leg is not None:
                leg.on_request(event.request, event.transaction)
            else:
                self.core.respond(event.transaction, 481)
        elif isinstance(event, AckReceived):
            leg = self.core.legs.get(event.key)
            if leg is not None:
                leg.on_ack(event.ack)
        elif isinstance(event, DialogEnded):
            leg = self.core.legs.get(event.key)
            if leg is not None:
                leg.on_ended(event.reason, event.bye)
        elif isinstance(event, CallCancelled):
            incoming = self._incoming.get(event.transaction)
            if incoming is not None:
                incoming.on_cancel()
                task = self._calls.get(incoming.call_id)
                if task is not None:
                    task.cancel()
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            if isinstance(event.transaction, ClientTransaction):
                timed_out = isinstance(event, TransactionTimedOut)
                self.core.on_failure(event.transaction, 408 if timed_out else 503,
                                     "Request Timeout (no response)" if timed_out else "Service Unavailable "
                                     "(transport error)")

    def _on_offered(self, offered: CallOffered) -> None:
        incoming = IncomingCall(self.core, offered)
        self._incoming[offered.transaction] = incoming
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run_call(incoming), name=f"call-{incoming.call_id}")
        self._calls[incoming.call_id] = task

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
        tag = new_tag() + self.core.endpoint.stamp
        headers.add(FROM, f"{display}<sip:{from_user or self.user}@{format_hostport(host, port)}>;tag={tag}")
        headers.add(TO, f"<{target}>")
        headers.add(CALL_ID, new_call_id(host))
        headers.add(CSEQ, f"1 {method}")
        return Request(method, target, headers)

    def _binding(self, target: SipUri) -> Binding | None:
        if self.registrar is None or not target.user:
            return None
        return self.registrar.binding_for(target, self.clock.now())
