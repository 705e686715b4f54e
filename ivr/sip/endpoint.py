"""The SIP endpoint: everything between the socket and the application, as one sans-I/O object.

In the shape of aioquic's `QuicConnection`: bytes and the time go in, datagrams, one deadline and typed
events come out. It never reads a clock or touches a socket, so a test drives a whole INVITE/ACK/BYE
exchange with plain calls and a `FakeClock`'s `now()`:

    endpoint = SipEndpoint(("127.0.0.1", 5060), accept_number=lambda dialed: dialed == "100")
    endpoint.receive_datagram(invite_bytes, ("127.0.0.1", 5062), now=0.0)
    offered = endpoint.next_event()                          # CallOffered(request, transaction, ...)
    dialog = endpoint.answer(offered, sdp_answer, now=0.1)   # 200 OK, retransmitted until the ACK
    endpoint.datagrams_to_send()                             # [(b"SIP/2.0 100 Trying...", peer), (b"...200 OK", peer)]
    endpoint.next_deadline()                                 # 0.6: the 2xx retransmission
    endpoint.handle_timer(now=0.6)

What it does on its own, so the application never sees it:

* transactions (`TransactionLayer`): retransmissions both ways, 100 Trying, 200/481 to CANCEL, 400 to bad bytes;
* admission of a new INVITE: 503 + Retry-After when draining or at `max_calls`, 480 with no application,
  420 for unknown `Require`, 415 for a body that is not SDP, 400 without Contact or with bad SDP, 404
  when `accept_number` refuses the dialed number; the SDP offer is parsed once, here;
* CANCEL of an INVITE not yet answered: 487;
* the dialog table: our 2xx to an INVITE is serialized once and retransmitted until its ACK, which is
  matched here (BYE after 64*T1 without it); our ACK is re-sent for each copy of the peer's 2xx;
* in-dialog requests: 481 for unknown dialogs, CSeq order and re-INVITE glare (500/491), BYE answered 200;
* out of dialog: OPTIONS 200, REGISTER to the `Registrar`, 481 for dialog methods, 405 for the rest;
* a new INVITE whose Call-ID is already a live call (another tag, or a merged copy) gets 482 (RFC 3261 8.2.2.2);
* with a `SipEdge` (issue #15): datagrams over a source's token bucket are dropped, INVITEs from untrusted
  sources are dropped or get 403, a source at its call limit gets 503.
"""

from __future__ import annotations

import enum
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ivr.sip.admission import SDP, SUPPORTED_HEADER, Admission
from ivr.sip.builders import build_response
from ivr.sip.dialog import Dialog, DialogInput, OkRetransmission, address_of
from ivr.sip.edge import SipEdge
from ivr.sip.errors import SdpError
from ivr.sip.events import (
    AckReceived,
    AckTimedOut,
    Address,
    CallCancelled,
    CallOffered,
    DialogEnded,
    DialogEndReason,
    DialogKey,
    DialogRequestReceived,
    EndpointEvent,
    InviteCancelled,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
)
from ivr.sip.headers import (
    ACCEPT,
    ALLOW,
    CONTACT,
    RETRY_AFTER,
    SERVER,
    SUPPORTED,
    USER_AGENT,
)
from ivr.sip.hostport import format_hostport
from ivr.sip.layer import TransactionLayer
from ivr.sip.message import Request, Response, new_branch, new_tag
from ivr.sip.registrar import Registrar
from ivr.sip.sdp import SessionDescription
from ivr.sip.transaction import DEFAULT_TIMERS, ClientTransaction, ServerTransaction, TimerConfig, TxState


class TransportKind(enum.Enum):
    """What carries the messages: UDP (we retransmit) or TCP/TLS (reliable: no retransmissions)."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"


ALLOWED_METHODS = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE, REGISTER"
DIALOG_METHODS = frozenset({"BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK"})


@dataclass(slots=True)
class _DialogEntry:
    """One dialog in the table, with the 2xx we retransmit and the last ACK we sent in it."""

    dialog: Dialog
    incoming: bool
    """A call the peer placed: it counts against `max_calls` until it ends."""
    ok: OkRetransmission | None = None
    ack: tuple[bytes, Address, int] | None = None
    """Our last ACK (bytes, destination, CSeq), re-sent for each copy of the 2xx it acknowledged."""


class SipEndpoint:
    """Transactions, admission, the dialog table, 2xx/ACK and CANCEL of one transport; pure."""

    def __init__(self, local_address: Address = ("127.0.0.1", 0), *, transport: TransportKind = TransportKind.UDP,
                 timers: TimerConfig = DEFAULT_TIMERS, user_agent: str = "ivr",
                 accept_number: Callable[[str], bool] | None = None, max_calls: int | None = None,
                 retry_after_s: int = 30, registrar: Registrar | None = None, edge: SipEdge | None = None) -> None:
        self.local_address = local_address
        """Our host:port as written in Via and Contact (set by the adapter once its socket is bound)."""
        self.stamp = ""
        """Appended to our Via branches and local tags: a worker of a node writes its index there
        (`ivr.workers.routing`), so what comes back reaches it whichever worker the kernel gives it to."""
        self.transport = transport
        self.layer = TransactionLayer(reliable=transport is not TransportKind.UDP, timers=timers)
        self.user_agent = user_agent
        self.admission = Admission(accept_number=accept_number, max_calls=max_calls, retry_after_s=retry_after_s)
        """Which new INVITEs we take (draining, capacity, numbers served) and the calls the peers placed."""
        self.registrar = registrar
        self._dialogs: dict[DialogKey, _DialogEntry] = {}
        self._offered: dict[ServerTransaction, str] = {}
        """INVITEs offered to the application and not finally answered yet -> their To tag."""
        # Monotonic totals for /metrics (retransmissions absorbed by the transactions are not counted).
        self.requests_in: Counter[str] = Counter()
        self.requests_out: Counter[str] = Counter()
        self.responses_in: Counter[tuple[str, int]] = Counter()
        self.responses_out: Counter[tuple[str, int]] = Counter()
        self._edge: SipEdge | None = None
        self.edge = edge
        self._events: deque[EndpointEvent] = deque()

    @property
    def edge(self) -> SipEdge | None:
        """Trusted sources, per-source rate and call limits, the server-transaction cap (None: no limits)."""
        return self._edge

    @edge.setter
    def edge(self, edge: SipEdge | None) -> None:
        self._edge = edge
        self.layer.max_server_transactions = edge.policy.max_server_transactions if edge is not None else None

    # -- input ----------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """One datagram (or one framed TCP message) arrived from `source`."""
        edge = self.edge
        if edge is not None and not edge.admit_datagram_bytes(data, source[0], now):
            return
        self._absorb(self.layer.receive_datagram(data, source, now), now)

    def handle_timer(self, now: float) -> None:
        """Fire every deadline at or before `now`."""
        self._absorb(self.layer.handle_timer(now), now)

    def transport_failed(self, destination: Address, now: float) -> None:
        """The transport cannot reach `destination` (a refused TCP connect): its transactions fail at once."""
        self._absorb(self.layer.transport_failed(destination, now), now)

    # -- output ---------------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        return self.layer.datagrams_to_send()

    def next_deadline(self) -> float | None:
        return self.layer.next_deadline()

    def next_event(self) -> EndpointEvent | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[EndpointEvent]:
        """Take every pending event, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    # -- identity -------------------------------------------------------------------------------------

    def via(self) -> str:
        hostport = format_hostport(*self.local_address)
        return f"SIP/2.0/{self.transport.value} {hostport};branch={new_branch()}{self.stamp};rport"

    def contact(self, user: str | None = None) -> str:
        userpart = f"{user}@" if user else ""
        transport = f";transport={self.transport.value.lower()}" if self.transport is not TransportKind.UDP else ""
        return f"<sip:{userpart}{format_hostport(*self.local_address)}{transport}>"

    def dialog(self, key: DialogKey) -> Dialog | None:
        entry = self._dialogs.get(key)
        return entry.dialog if entry is not None else None

    # -- what the application does: server side -------------------------------------------------------

    def respond(self, transaction: ServerTransaction, status: int, reason: str | None = None, *, now: float,
                to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None) -> Response:
        """Answer a request; a 2xx to an INVITE is retransmitted until its ACK (RFC 3261 13.3.1.4)."""
        extra = list(headers)
        if status == 405 or (transaction.method == "OPTIONS" and status == 200):
            extra += [(ALLOW, ALLOWED_METHODS), (ACCEPT, SDP), (SUPPORTED, SUPPORTED_HEADER)]
        extra.append((SERVER, self.user_agent))
        response = build_response(transaction.request, status, reason, to_tag=to_tag, headers=extra,
                                  body=body, content_type=content_type)
        self._send_response(transaction, response, now, to_tag)
        return response

    def answer(self, offered: CallOffered, sdp: bytes, *, now: float,
               headers: Iterable[tuple[str, str]] = ()) -> Dialog:
        """Accept an offered call with 200 OK and our SDP; returns its confirmed dialog."""
        contact = self.contact()
        dialog = Dialog.as_uas(offered.request, offered.local_tag, contact)
        self._dialogs[dialog.key] = _DialogEntry(dialog, incoming=True)
        extra = [(CONTACT, contact), (ALLOW, ALLOWED_METHODS), (SUPPORTED, SUPPORTED_HEADER), *headers]
        self.respond(offered.transaction, 200, now=now, to_tag=offered.local_tag, headers=extra, body=sdp,
                     content_type=SDP)
        dialog.move(DialogInput.SUCCESS)
        return dialog

    def end_dialog(self, key: DialogKey) -> None:
        """Forget a dialog (we sent BYE, or the application gave up on it); stops its 2xx retransmission."""
        entry = self._dialogs.pop(key, None)
        if entry is None:
            return
        if entry.incoming:
            self.admission.release(key[0])
        if entry.ok is not None:
            entry.ok.ack_received()
            entry.ok = None
        if not entry.dialog.terminated:
            entry.dialog.move(DialogInput.BYE)

    # -- what the application does: client side -------------------------------------------------------

    def send_request(self, request: Request, destination: Address, now: float) -> ClientTransaction:
        """Send `request` (not ACK) in a new client transaction; its responses come back as events."""
        request.headers.set(USER_AGENT, self.user_agent)
        self.requests_out[request.method] += 1
        return self.layer.send_request(request, destination, now)

    def add_dialog(self, dialog: Dialog) -> None:
        """Enter a dialog we created as UAC (from the 2xx to our INVITE) in the table."""
        self._dialogs.setdefault(dialog.key, _DialogEntry(dialog, incoming=False))

    def send_ack(self, key: DialogKey, ack: Request, destination: Address) -> None:
        """Send the ACK to a 2xx of our (re-)INVITE; it is re-sent for every copy of that 2xx."""
        data = self.layer.send_stateless(ack, destination)
        entry = self._dialogs.get(key)
        if entry is not None:
            entry.ack = (data, destination, ack.cseq.seq)

    # -- internals ------------------------------------------------------------------------------------

    def _send_response(self, transaction: ServerTransaction, response: Response, now: float,
                       to_tag: str | None = None) -> None:
        # Identities come from the request (parsed and cached when it arrived), never by parsing the response back.
        request = transaction.request
        tag = to_tag or request.to.tag or ""
        data = response.serialize()
        self.layer.send_response(transaction, response, now, data, tag)
        status = response.status
        self.responses_out[(transaction.method, status)] += 1
        if status >= 200 and self._offered.pop(transaction, None) is not None and status >= 300:
            self.admission.release(request.call_id)
        if transaction.method == "INVITE" and 200 <= status < 300:
            entry = self._dialogs.get((request.call_id, tag, request.from_.tag or ""))
            if entry is not None:
                if entry.ok is not None:
                    entry.ok.ack_received()
                entry.ok = OkRetransmission(data, transaction.remote, request.call_id, request.cseq.seq, now,
                                            self.layer.timers)
                self.layer.add_timed(entry.ok, now)

    def _absorb(self, events: list[LayerEvent], now: float) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                self._on_request(event, now)
            elif isinstance(event, ResponseReceived):
                self._on_response(event)
            elif isinstance(event, InviteCancelled):
                self._on_cancel(event.invite, now)
            elif isinstance(event, AckTimedOut):
                self._on_ack_timeout(event, now)
            else:
                self._events.append(event)

    def _on_response(self, event: ResponseReceived) -> None:
        response = event.response
        self.responses_in[(response.cseq.method, response.status)] += 1
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            entry = self._dialogs.get((response.call_id, response.from_.tag or "", response.to.tag or ""))
            if entry is not None and entry.ack is not None and entry.ack[2] == response.cseq.seq:
                self.layer.send_bytes(entry.ack[0], entry.ack[1])  # our ACK was lost: the 2xx came again
                return
        if event.transaction is not None:
            self._events.append(event)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request, tx = event.request, event.transaction
        self.requests_in[request.method] += 1
        to_tag = request.to.tag
        if tx is None:
            self._on_ack(request)
        elif to_tag is not None:
            self._on_in_dialog(request, tx, (request.call_id, to_tag, request.from_.tag or ""), now)
        elif request.method == "INVITE":
            self._on_invite(request, tx, event.source, now)
        elif request.method == "OPTIONS":  # a load balancer's probe (Kamailio dispatcher): 503 takes us out
            admission = self.admission
            busy = admission.busy
            self.respond(tx, 503 if busy else 200, "Draining" if admission.draining else None, now=now,
                         headers=admission.retry_after() if busy else [])
        elif request.method == "REGISTER" and self.registrar is not None:
            self._send_response(tx, self.registrar.handle(request, now), now)
        else:
            self.respond(tx, 481 if request.method in DIALOG_METHODS else 405, now=now)

    def _on_ack(self, ack: Request) -> None:
        key = (ack.call_id, ack.to.tag or "", ack.from_.tag or "")
        entry = self._dialogs.get(key)
        if entry is None or entry.ok is None or ack.cseq.seq != entry.ok.cseq:
            return  # a copy of an ACK already matched, or for a dialog we no longer have
        entry.ok.ack_received()
        entry.ok = None
        self._events.append(AckReceived(key, ack))

    def _on_in_dialog(self, request: Request, tx: ServerTransaction, key: DialogKey, now: float) -> None:
        entry = self._dialogs.get(key)
        if entry is None:
            self.respond(tx, 200 if request.method == "OPTIONS" else 481, now=now)
            return
        refusal = entry.dialog.check_request(request)
        if refusal is not None:
            headers = [(RETRY_AFTER, str(random.randint(1, 10)))] if refusal == 500 else []
            self.respond(tx, refusal, now=now, headers=headers)
        elif request.method == "BYE":
            self.respond(tx, 200, now=now)
            self.end_dialog(key)
            self._events.append(DialogEnded(key, DialogEndReason.REMOTE_BYE, request))
        else:
            self._events.append(DialogRequestReceived(key, request, tx))

    def _on_invite(self, request: Request, tx: ServerTransaction, source: Address, now: float) -> None:
        local_tag = new_tag() + self.stamp
        refusal = self.admission.refusal(request, source[0], self.edge)
        offer: SessionDescription | None = None
        if refusal is None and request.body:
            try:
                offer = SessionDescription.parse(request.body)
            except SdpError as exc:
                refusal = exc.status_hint, str(exc), []
        if refusal is not None:
            status, reason, headers = refusal
            self.respond(tx, status, reason, now=now, to_tag=local_tag, headers=headers)
            return
        self._offered[tx] = local_tag
        self.admission.admit(request.call_id, source[0])
        self._events.append(CallOffered(request, tx, source, local_tag, offer))

    def _on_cancel(self, invite: ServerTransaction, now: float) -> None:
        local_tag = self._offered.get(invite)
        if local_tag is None or invite.state is not TxState.PROCEEDING:
            return
        self.respond(invite, 487, now=now, to_tag=local_tag)
        self._events.append(CallCancelled(invite))

    def _on_ack_timeout(self, event: AckTimedOut, now: float) -> None:
        for key, entry in list(self._dialogs.items()):
            if key[0] == event.call_id and entry.ok is not None and entry.ok.cseq == event.cseq:
                entry.ok = None
                dialog = entry.dialog
                if not dialog.terminated:
                    bye = dialog.new_request("BYE", self.via())
                    self.send_request(bye, address_of(dialog.next_hop()), now)
                self.end_dialog(key)
                self._events.append(DialogEnded(key, DialogEndReason.NO_ACK, None))
