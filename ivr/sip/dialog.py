"""SIP dialogs (RFC 3261 section 12) and the UAS core's 2xx retransmission (13.3.1.4): pure.

A `Dialog` holds what both ends agreed on: Call-ID, tags, CSeq counters, the route set from
Record-Route, the remote target from Contact. It builds in-dialog requests (`new_request`, `ack`), checks
the requests the peer sends (CSeq order, re-INVITE glare), and moves Early -> Confirmed -> Terminated by
one transition table. It never sends anything: the endpoint keeps it, `ivr.sipua.leg.CallLeg` drives it.

Also here, because they are dialog usage rather than transactions: parsing DTMF carried in INFO,
message/sipfrag bodies of NOTIFY (REFER progress), and the 2xx retransmission the UAS core runs until
the ACK arrives.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError, TransactionError
from ivr.sip.events import AckTimedOut, Address, LayerEvent
from ivr.sip.headers import (
    CALL_ID,
    CONTACT,
    CONTENT_TYPE,
    CSEQ,
    FROM,
    MAX_FORWARDS,
    RECORD_ROUTE,
    ROUTE,
    TO,
    VIA,
)
from ivr.sip.message import Headers, NameAddr, Request, Response
from ivr.sip.transaction import DEFAULT_TIMERS, TimerConfig
from ivr.sip.uri import SipUri

DialogKey = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogInput(enum.Enum):
    PROVISIONAL = "1xx with a To tag"
    SUCCESS = "2xx to an INVITE"
    FAILURE = "3xx-6xx to the initial INVITE"
    REQUEST = "in-dialog request"
    BYE = "BYE sent or received"
    FATAL = "481/408 to an in-dialog request or ACK timeout"


_D = DialogState
_IN = DialogInput

TRANSITIONS: Mapping[tuple[DialogState, DialogInput], DialogState] = {
    (_D.EARLY, _IN.PROVISIONAL): _D.EARLY,
    (_D.EARLY, _IN.SUCCESS): _D.CONFIRMED,
    (_D.EARLY, _IN.FAILURE): _D.TERMINATED,
    (_D.EARLY, _IN.REQUEST): _D.EARLY,
    (_D.EARLY, _IN.BYE): _D.TERMINATED,
    (_D.EARLY, _IN.FATAL): _D.TERMINATED,
    (_D.CONFIRMED, _IN.PROVISIONAL): _D.CONFIRMED,
    (_D.CONFIRMED, _IN.SUCCESS): _D.CONFIRMED,
    (_D.CONFIRMED, _IN.REQUEST): _D.CONFIRMED,
    (_D.CONFIRMED, _IN.BYE): _D.TERMINATED,
    (_D.CONFIRMED, _IN.FATAL): _D.TERMINATED,
    (_D.TERMINATED, _IN.BYE): _D.TERMINATED,
    (_D.TERMINATED, _IN.FATAL): _D.TERMINATED,
}
"""The dialog's legal moves. A failed re-INVITE is not listed: it leaves a confirmed dialog as it was."""

TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})


def _without_tag(party: NameAddr) -> NameAddr:
    return dataclasses.replace(party, params=tuple(p for p in party.params if p[0].lower() != "tag"))


def _contact_uri(message: Request | Response) -> SipUri | None:
    contact = message.headers.get(CONTACT)
    if not contact or contact.strip() == "*":
        return None
    return message.contact[0].uri  # parsed (and cached) once, when the message was validated


@dataclass(slots=True)
class Dialog:
    """One dialog, from either side. Build with `Dialog.as_uas` or `Dialog.as_uac`."""

    call_id: str
    local_party: NameAddr
    """Our From (UAC) or To (UAS) with our tag: the From of every request we send in the dialog."""
    remote_party: NameAddr
    """The peer's name-addr with its tag: the To of our requests."""
    remote_target: SipUri
    """Where in-dialog requests go: the peer's Contact, refreshed by re-INVITE."""
    local_contact: str
    """Our Contact header value."""
    local_seq: int
    remote_seq: int | None
    route_set: list[str] = field(default_factory=list)
    """Route header values in the order we send them (Record-Route reversed for the UAC)."""
    is_uas: bool = False
    state: DialogState = DialogState.EARLY
    invite_sent_pending: bool = False
    """We sent a re-INVITE that has no final response yet (glare guard: theirs gets 491)."""
    invite_received_pending: bool = False
    """We received a re-INVITE we have not answered finally yet (ours must wait)."""

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str, local_contact: str) -> Dialog:
        """The dialog a UAS creates when it answers `invite` with a tagged 1xx or 2xx (12.1.1)."""
        remote_target = _contact_uri(invite)
        if remote_target is None:
            raise SipParseError("INVITE has no Contact header", header=CONTACT, status_hint=400)
        return cls(
            call_id=invite.call_id,
            local_party=_without_tag(invite.to).with_tag(local_tag),
            remote_party=invite.from_,
            remote_target=remote_target,
            local_contact=local_contact,
            local_seq=0,
            remote_seq=invite.cseq.seq,
            route_set=invite.headers.get_all(RECORD_ROUTE),
            is_uas=True,
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response, local_contact: str) -> Dialog:
        """The dialog a tagged 1xx or 2xx to our `invite` creates (12.1.2)."""
        remote_target = _contact_uri(response) or invite.uri
        dialog = cls(
            call_id=invite.call_id,
            local_party=invite.from_,
            remote_party=_without_tag(invite.to).with_tag(response.to.tag or ""),
            remote_target=remote_target,
            local_contact=local_contact,
            local_seq=invite.cseq.seq,
            remote_seq=None,
            route_set=list(reversed(response.headers.get_all(RECORD_ROUTE))),
            is_uas=False,
        )
        dialog.receive_response(response, "INVITE")
        return dialog

    # -- identity -------------------------------------------------------------------------------------

    @property
    def local_tag(self) -> str:
        return self.local_party.tag or ""

    @property
    def remote_tag(self) -> str:
        return self.remote_party.tag or ""

    @property
    def key(self) -> DialogKey:
        return self.call_id, self.local_tag, self.remote_tag

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    # -- transitions ----------------------------------------------------------------------------------

    def move(self, event: DialogInput) -> DialogState:
        """Apply one input; raises TransactionError naming state and input when it is not legal."""
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise TransactionError(
                f"dialog {self.call_id} in state {self.state.name} cannot handle {event.value}"
            ) from None
        return self.state

    def receive_response(self, response: Response, method: str) -> None:
        """A response to a request we sent in (or to create) the dialog."""
        status = response.status
        if method == "INVITE":
            if status < 200:
                if status > 100:
                    self.move(DialogInput.PROVISIONAL)
                return
            self.invite_sent_pending = False
            if status < 300:
                self.move(DialogInput.SUCCESS)
                target = _contact_uri(response)
                if target is not None:
                    self.remote_target = target
                return
            if self.state is DialogState.EARLY:
                self.move(DialogInput.FAILURE)
                return
        if status in (408, 481):
            self.move(DialogInput.FATAL)  # RFC 3261 12.2.1.2: the dialog is gone at the far end

    def check_request(self, request: Request) -> int | None:
        """Vet a request the peer sent in this dialog; returns the status to refuse it with, or None.

        500 for a CSeq lower than the last one (out of order), 491 for a re-INVITE while ours is pending
        (glare), 500 for a re-INVITE while we still answer the previous one (RFC 3261 14.2).
        """
        method = request.method
        if method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return 500
        self.remote_seq = seq
        if method == "INVITE":
            if self.invite_sent_pending:
                return 491
            if self.invite_received_pending:
                return 500
            self.invite_received_pending = True
        if method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target
        self.move(DialogInput.BYE if method == "BYE" else DialogInput.REQUEST)
        return None

    def reinvite_answered(self) -> None:
        """We sent the final response to the peer's re-INVITE."""
        self.invite_received_pending = False

    def terminate(self) -> None:
        """We hung up (sent BYE) or gave up on the dialog."""
        self.move(DialogInput.BYE)

    # -- building requests ----------------------------------------------------------------------------

    def next_hop(self) -> SipUri:
        """The URI whose host:port receives our in-dialog requests: first route, else the target."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return self.remote_target

    def new_request(self, method: str, via: str, *, body: bytes = b"", content_type: str | None = None,
                    headers: Iterable[tuple[str, str]] = ()) -> Request:
        """An in-dialog request (12.2.1.1); bumps our CSeq (the ACK and CANCEL use `ack` / the INVITE's)."""
        if method == "INVITE":
            if self.invite_received_pending:
                raise TransactionError(f"dialog {self.call_id}: cannot re-INVITE while answering the peer's")
            self.invite_sent_pending = True
        self.local_seq += 1
        return self._request(method, self.local_seq, via, body, content_type, headers)

    def ack(self, invite_seq: int, via: str, *, body: bytes = b"",
            content_type: str | None = None) -> Request:
        """The ACK for a 2xx to our INVITE or re-INVITE with CSeq `invite_seq` (13.2.2.4)."""
        return self._request("ACK", invite_seq, via, body, content_type, ())

    def _request(self, method: str, seq: int, via: str, body: bytes, content_type: str | None,
                 extra: Iterable[tuple[str, str]]) -> Request:
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = NameAddr.parse(routes[0]).uri
            if not any(name.lower() == "lr" for name, _ in first.params):
                uri = first  # strict router (RFC 2543): it goes in the Request-URI, target goes last
                routes = routes[1:] + [f"<{self.remote_target}>"]
        headers = Headers()
        headers.add(VIA, via)
        headers.add(MAX_FORWARDS, "70")
        for route in routes:
            headers.add(ROUTE, route)
        headers.add(FROM, str(self.local_party))
        headers.add(TO, str(self.remote_party))
        headers.add(CALL_ID, self.call_id)
        headers.add(CSEQ, f"{seq} {method}")
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            headers.add(CONTACT, self.local_contact)
        for name, value in extra:
            headers.add(name, value)
        if body and content_type:
            headers.add(CONTENT_TYPE, content_type)
        return Request(method, uri, headers, body)


def address_of(uri: SipUri) -> Address:
    """Where to send for a SIP URI with a numeric host (no DNS here): maddr/host and port or 5060."""
    host = uri.param("maddr") or uri.host
    return host.strip("[]"), uri.port or (5061 if uri.scheme == "sips" else 5060)


# --- 2xx retransmission (UAS core) --------------------------------------------------------------------


class OkRetransmission:
    """Retransmit a 2xx to an INVITE until its ACK (RFC 3261 13.3.1.4).

    Sent at 0, then at T1, 2*T1, 4*T1... capped at T2 (0.5, 1.5, 3.5, 7.5, 11.5 s...); after 64*T1 without
    an ACK it ends with `AckTimedOut` and the UAS hangs up. It runs over reliable transports too: a hop
    beyond the first may be UDP.
    """

    __slots__ = ("call_id", "cseq", "remote", "terminated", "_data", "_interval", "_next", "_give_up",
                 "_outbox", "_t2")

    def __init__(self, response: bytes, remote: Address, call_id: str, cseq: int, now: float,
                 timers: TimerConfig = DEFAULT_TIMERS) -> None:
        self.call_id = call_id
        self.cseq = cseq
        self.remote = remote
        self.terminated = False
        self._data = response
        self._interval = timers.t1_s
        self._t2 = timers.t2_s
        self._next = now + timers.t1_s
        self._give_up = now + timers.timeout_s
        self._outbox: list[bytes] = []

    def next_deadline(self) -> float | None:
        return None if self.terminated else min(self._next, self._give_up)

    def handle_timer(self, now: float) -> list[LayerEvent]:
        if self.terminated:
            return []
        if now >= self._give_up:
            self.terminated = True
            return [AckTimedOut(self.call_id, self.cseq)]
        while self._next <= now:
            self._outbox.append(self._data)
            self._interval = min(self._interval * 2, self._t2)
            self._next += self._interval
        return []

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out = [(data, self.remote) for data in self._outbox]
        self._outbox.clear()
        return out

    def ack_received(self) -> None:
        self.terminated = True


# --- bodies carried in dialog requests ----------------------------------------------------------------

DTMF_SIGNALS = frozenset("0123456789*#ABCD")
_DTMF_NUMERIC = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """The (digit, duration_ms) of an INFO body, or None when it carries no DTMF.

    Understands application/dtmf-relay (`Signal=5` / `Duration=160` lines) and application/dtmf (the
    digit alone, or as an RFC 4733 event number).
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace").strip()
    if kind == "application/dtmf-relay":
        fields: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep:
                fields[name.strip().lower()] = value.strip()
        signal = fields.get("signal", "")
        try:
            duration = int(fields.get("duration", "250"))
        except ValueError:
            duration = 250
    elif kind == "application/dtmf":
        signal, duration = text, 250
    else:
        return None
    signal = _DTMF_NUMERIC.get(signal, signal).upper()
    if len(signal) != 1 or signal not in DTMF_SIGNALS:
        return None
    return signal, duration


def dtmf_relay_body(digit: str, duration_ms: int = 160) -> bytes:
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()


def parse_sipfrag(body: bytes) -> tuple[int, str] | None:
    """(status, reason) of a message/sipfrag status line such as `SIP/2.0 200 OK`, else None."""
    line = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith("SIP/") or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def sipfrag_body(status: int, reason: str) -> bytes:
    return f"SIP/2.0 {status} {reason}\r\n".encode()
