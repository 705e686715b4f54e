"""SIP transactions (RFC 3261 section 17, with RFC 6026's Accepted state): pure state machines.

Four machines share one base: INVITE and non-INVITE, client and server. Each one is fed messages and the
time, and is asked what to send and when it next needs to be woken:

    tx = InviteClientTransaction(invite, remote=("127.0.0.1", 5062), now=0.0, reliable=False)
    tx.datagrams_to_send(now=0.0)     # the INVITE
    tx.next_deadline()                # 0.5: Timer A
    tx.handle_timer(now=0.5)          # retransmits; next at 1.5, 3.5, 7.5 ... until Timer B at 32.0
    tx.receive(response, now=0.7)     # -> [ResponseReceived(...)]

The legal moves of each machine are one table, `(state, input) -> state`; anything else raises
`TransactionError` naming the machine, state and input. Inputs a peer can send in any state are in the
table (absorbed as self-moves), so only our own misuse raises. Over a reliable transport there are no
retransmissions and the wait states (D, I, J, K) end at once.

`TransactionLayer` (in `ivr.sip.layer`) routes messages to these by key.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ivr.sip.builders import build_response
from ivr.sip.errors import TransactionError
from ivr.sip.events import (
    Address,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from ivr.sip.headers import CALL_ID, CSEQ, FROM, MAX_FORWARDS, ROUTE, TO, VIA
from ivr.sip.message import Headers, Request, Response

MAGIC_COOKIE = "z9hG4bK"

TransactionKey = tuple[str, str, str]
"""(branch, sent-by, method) per RFC 3261 17.1.3 / 17.2.3; ACK and CANCEL look up their INVITE."""


@dataclass(slots=True, frozen=True)
class TimerConfig:
    """RFC 3261 timer base values, in seconds."""

    t1_s: float = 0.5
    """Round-trip estimate: first retransmit interval (Timers A, E, G)."""
    t2_s: float = 4.0
    """Cap on the retransmit interval of non-INVITE requests and INVITE final responses."""
    t4_s: float = 5.0
    """How long a message may stay in the network (Timers I, K)."""
    timer_d_s: float = 32.0
    """How long an INVITE client absorbs retransmitted 3xx-6xx over UDP (RFC 3261: at least 32 s)."""
    trying_s: float = 0.2
    """How long a new INVITE waits for the TU's first response before its transaction sends 100 Trying
    itself (RFC 3261 17.2.1: a TU that answers within 200 ms makes the 100 unnecessary)."""

    @property
    def timeout_s(self) -> float:
        """64*T1: Timers B, F, H, J, L, M."""
        return 64 * self.t1_s


DEFAULT_TIMERS = TimerConfig()


class TxState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class TxInput(enum.Enum):
    """What happened to a transaction: the event type of its transition table."""

    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "3xx-6xx received"
    SEND_1XX = "1xx sent"
    SEND_2XX = "2xx sent"
    SEND_FINAL = "3xx-6xx sent"
    TIMER_RETRANSMIT = "retransmit timer (A, E or G)"
    TIMER_TIMEOUT = "timeout timer (B, F or H)"
    TIMER_LINGER = "linger timer (D, I, J, K, L or M)"
    TIMER_TRYING = "100 Trying timer"
    TRANSPORT_ERROR = "transport error"


class Timer(enum.Enum):
    RETRANSMIT = "retransmit"
    TIMEOUT = "timeout"
    LINGER = "linger"
    TRYING = "trying"


_TIMER_INPUT: Mapping[Timer, TxInput] = {
    Timer.RETRANSMIT: TxInput.TIMER_RETRANSMIT,
    Timer.TIMEOUT: TxInput.TIMER_TIMEOUT,
    Timer.LINGER: TxInput.TIMER_LINGER,
    Timer.TRYING: TxInput.TIMER_TRYING,
}

S = TxState
I = TxInput  # noqa: E741 - short alias keeps the tables readable


def _status_input(status: int, *, sent: bool) -> TxInput:
    if status < 200:
        return I.SEND_1XX if sent else I.RECV_1XX
    if status < 300:
        return I.SEND_2XX if sent else I.RECV_2XX
    return I.SEND_FINAL if sent else I.RECV_FINAL


class Transaction:
    """What the four machines share: state, one table, up to three timers, an outbox."""

    __slots__ = ("key", "_request", "remote", "reliable", "timers", "state", "_deadlines", "_outbox",
                 "_interval")

    NAME: ClassVar[str] = "transaction"
    INITIAL: ClassVar[TxState] = TxState.TRYING
    TRANSITIONS: ClassVar[Mapping[tuple[TxState, TxInput], TxState]] = {}

    def __init__(self, key: TransactionKey, request: Request, remote: Address, state: TxState, *,
                 reliable: bool, timers: TimerConfig) -> None:
        self.key = key
        self._request: Request | None = request
        self.remote = remote
        """Where our messages go: the next hop (client) or the request's source (server)."""
        self.reliable = reliable
        self.timers = timers
        self.state = state
        self._deadlines: dict[Timer, float] = {}
        self._outbox: list[bytes] = []
        self._interval = timers.t1_s

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key[2]} {self.key[0]} {self.state.name}>"

    @property
    def request(self) -> Request:
        """The request that created the transaction (its INVITE for an INVITE transaction).

        A server transaction lets go of it once its final response is sent; asking for it then raises
        `TransactionError` (nothing may be answered twice)."""
        if self._request is None:
            raise TransactionError(
                f"{self.NAME} transaction {self.key[0]} sent its final response: its request is no longer kept"
            )
        return self._request

    @property
    def method(self) -> str:
        return self.key[2]

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest time `handle_timer` has work to do, or None."""
        return min(self._deadlines.values()) if self._deadlines else None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Take the messages queued since the last call, each with its destination."""
        out = [(data, self.remote) for data in self._outbox]
        self._outbox.clear()
        return out

    def handle_timer(self, now: float) -> list[LayerEvent]:
        """Fire every timer whose deadline is at or before `now`, earliest first."""
        events: list[LayerEvent] = []
        while self._deadlines and self.state is not S.TERMINATED:
            timer, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self._deadlines[timer]
            self._move(_TIMER_INPUT[timer])
            events.extend(self._on_timer(timer, deadline))
        return events

    def transport_failed(self) -> list[LayerEvent]:
        """The transport could not deliver our message (RFC 3261 17.1.4 / 17.2.4), e.g. a refused TCP connect."""
        if self.state is S.TERMINATED:
            return []
        self._move(I.TRANSPORT_ERROR)
        self._terminate()
        return [TransportFailed(self)]  # type: ignore[arg-type]

    # -- internals ------------------------------------------------------------------------------------

    def _move(self, event: TxInput) -> TxState:
        try:
            new = self.TRANSITIONS[(self.state, event)]
        except KeyError:
            raise TransactionError(
                f"{self.NAME} transaction {self.key[0]} in state {self.state.name} cannot handle "
                f"{event.value}"
            ) from None
        self.state = new
        return new

    def _on_timer(self, timer: Timer, deadline: float) -> list[LayerEvent]:
        raise NotImplementedError

    def _start(self, timer: Timer, at: float) -> None:
        self._deadlines[timer] = at

    def _stop(self, *timers: Timer) -> None:
        for timer in timers:
            self._deadlines.pop(timer, None)

    def _linger(self, now: float, wait_s: float) -> None:
        """Enter a wait state (D, I, J, K, L, M): zero over a reliable transport ends it at once."""
        self._stop(Timer.RETRANSMIT, Timer.TIMEOUT)
        if wait_s <= 0:
            self._move(I.TIMER_LINGER)
            self._terminate()
        else:
            self._start(Timer.LINGER, now + wait_s)

    def _terminate(self) -> None:
        self.state = S.TERMINATED
        self._deadlines.clear()


# --- client transactions ------------------------------------------------------------------------------


class ClientTransaction(Transaction):
    """A request we sent, until its final response (plus the linger that absorbs retransmissions)."""

    __slots__ = ("_request_bytes", "_ack_bytes")

    def __init__(self, request: Request, remote: Address, now: float, *, reliable: bool = False,
                 timers: TimerConfig = DEFAULT_TIMERS) -> None:
        super().__init__(client_key(request), request, remote, self.INITIAL, reliable=reliable, timers=timers)
        self._request_bytes = request.serialize()
        self._ack_bytes: bytes | None = None
        self._outbox.append(self._request_bytes)
        if not reliable:
            self._start(Timer.RETRANSMIT, now + timers.t1_s)
        self._start(Timer.TIMEOUT, now + timers.timeout_s)

    def receive(self, response: Response, now: float) -> list[LayerEvent]:
        """Feed a response whose key matched; returns what the TU must see."""
        before = self.state
        self._move(_status_input(response.status, sent=False))
        return self._on_response(before, response, now)

    def _on_response(self, before: TxState, response: Response, now: float) -> list[LayerEvent]:
        raise NotImplementedError

    def _on_timer(self, timer: Timer, deadline: float) -> list[LayerEvent]:
        if timer is Timer.RETRANSMIT:
            self._outbox.append(self._request_bytes)
            self._interval = self._next_interval()
            self._start(Timer.RETRANSMIT, deadline + self._interval)
            return []
        self._terminate()
        return [TransactionTimedOut(self)] if timer is Timer.TIMEOUT else []

    def _next_interval(self) -> float:
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 17.1.1 + RFC 6026: Calling -> Proceeding -> Completed | Accepted -> Terminated.

    Timer A retransmits the INVITE at T1, 2*T1, 4*T1... (0.5, 1.5, 3.5 s after sending) while Calling;
    Timer B gives up at 64*T1. A 3xx-6xx is ACKed here (Timer D absorbs its retransmissions); a 2xx
    moves to Accepted, where 2xx retransmissions still reach the TU so the UAC core re-sends its ACK.
    """

    __slots__ = ()
    NAME = "INVITE client"
    INITIAL = S.CALLING
    TRANSITIONS = {
        (S.CALLING, I.TIMER_RETRANSMIT): S.CALLING,
        (S.CALLING, I.TIMER_TIMEOUT): S.TERMINATED,
        (S.CALLING, I.RECV_1XX): S.PROCEEDING,
        (S.CALLING, I.RECV_2XX): S.ACCEPTED,
        (S.CALLING, I.RECV_FINAL): S.COMPLETED,
        (S.CALLING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.PROCEEDING, I.RECV_1XX): S.PROCEEDING,
        (S.PROCEEDING, I.RECV_2XX): S.ACCEPTED,
        (S.PROCEEDING, I.RECV_FINAL): S.COMPLETED,
        (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, I.RECV_1XX): S.COMPLETED,
        (S.COMPLETED, I.RECV_2XX): S.COMPLETED,
        (S.COMPLETED, I.RECV_FINAL): S.COMPLETED,
        (S.COMPLETED, I.TIMER_LINGER): S.TERMINATED,
        (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.ACCEPTED, I.RECV_1XX): S.ACCEPTED,
        (S.ACCEPTED, I.RECV_2XX): S.ACCEPTED,
        (S.ACCEPTED, I.RECV_FINAL): S.ACCEPTED,
        (S.ACCEPTED, I.TIMER_LINGER): S.TERMINATED,
        (S.ACCEPTED, I.TRANSPORT_ERROR): S.TERMINATED,
    }

    def _next_interval(self) -> float:
        return self._interval * 2

    def _on_response(self, before: TxState, response: Response, now: float) -> list[LayerEvent]:
        status = response.status
        if before in (S.CALLING, S.PROCEEDING):
            if status < 200:
                self._stop(Timer.RETRANSMIT, Timer.TIMEOUT)
            elif status < 300:
                self._stop(Timer.RETRANSMIT, Timer.TIMEOUT)
                self._start(Timer.LINGER, now + self.timers.timeout_s)
            else:
                self._ack_bytes = build_ack(self.request, response).serialize()
                self._outbox.append(self._ack_bytes)
                self._linger(now, 0.0 if self.reliable else self.timers.timer_d_s)
            return [ResponseReceived(response, self)]
        if before is S.COMPLETED and status >= 300 and self._ack_bytes is not None:
            self._outbox.append(self._ack_bytes)  # our ACK was lost: the final was retransmitted
        if before is S.ACCEPTED and 200 <= status < 300:
            return [ResponseReceived(response, self)]
        return []


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 17.1.2: Trying -> Proceeding -> Completed -> Terminated.

    Timer E retransmits at T1, doubling up to T2 (and every T2 once Proceeding); Timer F gives up at
    64*T1; Timer K (T4) absorbs response retransmissions.
    """

    __slots__ = ()
    NAME = "non-INVITE client"
    TRANSITIONS = {
        (S.TRYING, I.TIMER_RETRANSMIT): S.TRYING,
        (S.TRYING, I.TIMER_TIMEOUT): S.TERMINATED,
        (S.TRYING, I.RECV_1XX): S.PROCEEDING,
        (S.TRYING, I.RECV_2XX): S.COMPLETED,
        (S.TRYING, I.RECV_FINAL): S.COMPLETED,
        (S.TRYING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.PROCEEDING, I.TIMER_RETRANSMIT): S.PROCEEDING,
        (S.PROCEEDING, I.TIMER_TIMEOUT): S.TERMINATED,
        (S.PROCEEDING, I.RECV_1XX): S.PROCEEDING,
        (S.PROCEEDING, I.RECV_2XX): S.COMPLETED,
        (S.PROCEEDING, I.RECV_FINAL): S.COMPLETED,
        (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, I.RECV_1XX): S.COMPLETED,
        (S.COMPLETED, I.RECV_2XX): S.COMPLETED,
        (S.COMPLETED, I.RECV_FINAL): S.COMPLETED,
        (S.COMPLETED, I.TIMER_LINGER): S.TERMINATED,
        (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
    }

    def _next_interval(self) -> float:
        if self.state is S.PROCEEDING:
            return self.timers.t2_s
        return min(self._interval * 2, self.timers.t2_s)

    def _on_response(self, before: TxState, response: Response, now: float) -> list[LayerEvent]:
        if before is S.COMPLETED:
            return []
        if response.status >= 200:
            self._linger(now, 0.0 if self.reliable else self.timers.t4_s)
        return [ResponseReceived(response, self)]


# --- server transactions ------------------------------------------------------------------------------


class ServerTransaction(Transaction):
    """A request we received, until our final response has done its job.

    Once the final response is sent the transaction only absorbs retransmissions (for up to 64*T1 over
    UDP) with the bytes it keeps, so it lets go of the parsed request: at hundreds of calls a second,
    lingering transactions holding whole requests were most of the objects the garbage collector walks.
    """

    __slots__ = ("_last_response", "last_status", "to_tag")

    def __init__(self, request: Request, source: Address, now: float, *, reliable: bool = False,
                 timers: TimerConfig = DEFAULT_TIMERS) -> None:
        super().__init__(server_key(request), request, source, self.INITIAL, reliable=reliable, timers=timers)
        self._last_response: bytes | None = None
        self.last_status = 0
        """Status of the last response we sent (0 before any)."""
        self.to_tag: str | None = None
        """The To tag of our responses (set by the first one that had one); CANCEL's 200 reuses it."""

    def receive(self, request: Request, now: float) -> list[LayerEvent]:
        """Feed a retransmission of our request (or, for INVITE, the ACK to our 3xx-6xx)."""
        event = I.RECV_ACK if request.method == "ACK" else I.RECV_REQUEST
        before = self.state
        self._move(event)
        if event is I.RECV_ACK:
            return self._on_ack(before, request, now)
        if self._last_response is not None and before in (S.PROCEEDING, S.COMPLETED):
            self._outbox.append(self._last_response)
        return []

    def send_response(self, response: Response, now: float, data: bytes | None = None,
                      to_tag: str | None = None) -> list[LayerEvent]:
        """Send the TU's response; raises TransactionError if this state cannot send it.

        `data` is its bytes when the caller serialized it already (a 2xx the UAS core retransmits is
        serialized once); `to_tag` its To tag when the caller knows it ("" for none), so the response
        need not be parsed back.
        """
        before = self.state
        self._move(_status_input(response.status, sent=True))
        self._last_response = response.serialize() if data is None else data
        self.last_status = response.status
        if self.to_tag is None and response.status > 100:
            self.to_tag = (response.to.tag if to_tag is None else to_tag) or None
        self._outbox.append(self._last_response)
        self._on_sent(before, response.status, now)
        if response.status >= 200:
            self._request = None
        return []

    def _on_ack(self, before: TxState, ack: Request, now: float) -> list[LayerEvent]:
        return []

    def _on_sent(self, before: TxState, status: int, now: float) -> None:
        raise NotImplementedError


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 17.2.1 + RFC 6026: Proceeding -> Completed -> Confirmed | Accepted -> Terminated.

    The transaction sends 100 Trying itself only when the TU has sent no response `trying_s` (200 ms)
    after the INVITE, or when the INVITE is retransmitted before any response: a UAS that answers at
    once sends one datagram less per call. Retransmitted INVITEs get the last provisional (or final)
    again. A 3xx-6xx is retransmitted by Timer G (T1 doubling to T2) until the ACK or Timer H (64*T1);
    Timer I absorbs ACK copies. After a 2xx the transaction waits in Accepted (Timer L) so INVITE copies
    are not taken for new calls; the 2xx itself is retransmitted by the UAS core, not here (RFC 3261
    13.3.1.4).
    """

    __slots__ = ()
    NAME = "INVITE server"
    INITIAL = S.PROCEEDING
    TRANSITIONS = {
        (S.PROCEEDING, I.RECV_REQUEST): S.PROCEEDING,
        (S.PROCEEDING, I.RECV_ACK): S.PROCEEDING,
        (S.PROCEEDING, I.SEND_1XX): S.PROCEEDING,
        (S.PROCEEDING, I.SEND_2XX): S.ACCEPTED,
        (S.PROCEEDING, I.SEND_FINAL): S.COMPLETED,
        (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.PROCEEDING, I.TIMER_TRYING): S.PROCEEDING,
        (S.COMPLETED, I.RECV_REQUEST): S.COMPLETED,
        (S.COMPLETED, I.RECV_ACK): S.CONFIRMED,
        (S.COMPLETED, I.TIMER_RETRANSMIT): S.COMPLETED,
        (S.COMPLETED, I.TIMER_TIMEOUT): S.TERMINATED,
        (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.CONFIRMED, I.RECV_REQUEST): S.CONFIRMED,
        (S.CONFIRMED, I.RECV_ACK): S.CONFIRMED,
        (S.CONFIRMED, I.TIMER_LINGER): S.TERMINATED,
        (S.CONFIRMED, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.ACCEPTED, I.RECV_REQUEST): S.ACCEPTED,
        (S.ACCEPTED, I.RECV_ACK): S.ACCEPTED,
        (S.ACCEPTED, I.SEND_2XX): S.ACCEPTED,
        (S.ACCEPTED, I.TIMER_LINGER): S.TERMINATED,
        (S.ACCEPTED, I.TRANSPORT_ERROR): S.TERMINATED,
    }

    def __init__(self, request: Request, source: Address, now: float, *, reliable: bool = False,
                 timers: TimerConfig = DEFAULT_TIMERS) -> None:
        super().__init__(request, source, now, reliable=reliable, timers=timers)
        self._start(Timer.TRYING, now + timers.trying_s)

    def receive(self, request: Request, now: float) -> list[LayerEvent]:
        events = super().receive(request, now)
        if request.method == "INVITE" and Timer.TRYING in self._deadlines:
            self._send_trying(now)  # the peer retransmits before we said anything: tell it we have it
        return events

    def _send_trying(self, now: float) -> None:
        self.send_response(build_response(self.request, 100), now)

    def _on_ack(self, before: TxState, ack: Request, now: float) -> list[LayerEvent]:
        if before is S.COMPLETED:
            self._linger(now, 0.0 if self.reliable else self.timers.t4_s)
        elif before is S.ACCEPTED:
            return [RequestReceived(ack, self.remote, None)]  # a 2xx ACK that reused the INVITE branch
        return []

    def _on_sent(self, before: TxState, status: int, now: float) -> None:
        self._stop(Timer.TRYING)
        if before is not S.PROCEEDING or status < 200:
            return
        if status < 300:
            self._start(Timer.LINGER, now + self.timers.timeout_s)
            return
        if not self.reliable:
            self._interval = self.timers.t1_s
            self._start(Timer.RETRANSMIT, now + self._interval)
        self._start(Timer.TIMEOUT, now + self.timers.timeout_s)

    def _on_timer(self, timer: Timer, deadline: float) -> list[LayerEvent]:
        if timer is Timer.TRYING:
            self._send_trying(deadline)
            return []
        if timer is Timer.RETRANSMIT:
            assert self._last_response is not None
            self._outbox.append(self._last_response)
            self._interval = min(self._interval * 2, self.timers.t2_s)
            self._start(Timer.RETRANSMIT, deadline + self._interval)
            return []
        self._terminate()
        return [TransactionTimedOut(self)] if timer is Timer.TIMEOUT else []


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 17.2.2: Trying -> Proceeding -> Completed -> Terminated (Timer J absorbs copies)."""

    __slots__ = ()
    NAME = "non-INVITE server"
    TRANSITIONS = {
        (S.TRYING, I.RECV_REQUEST): S.TRYING,
        (S.TRYING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.TRYING, I.SEND_1XX): S.PROCEEDING,
        (S.TRYING, I.SEND_2XX): S.COMPLETED,
        (S.TRYING, I.SEND_FINAL): S.COMPLETED,
        (S.PROCEEDING, I.RECV_REQUEST): S.PROCEEDING,
        (S.PROCEEDING, I.SEND_1XX): S.PROCEEDING,
        (S.PROCEEDING, I.SEND_2XX): S.COMPLETED,
        (S.PROCEEDING, I.SEND_FINAL): S.COMPLETED,
        (S.PROCEEDING, I.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, I.RECV_REQUEST): S.COMPLETED,
        (S.COMPLETED, I.TIMER_LINGER): S.TERMINATED,
        (S.COMPLETED, I.TRANSPORT_ERROR): S.TERMINATED,
    }

    def _on_sent(self, before: TxState, status: int, now: float) -> None:
        if status >= 200:
            self._linger(now, 0.0 if self.reliable else self.timers.timeout_s)

    def _on_timer(self, timer: Timer, deadline: float) -> list[LayerEvent]:
        self._terminate()
        return []


# --- keys and the ACK a client transaction builds -----------------------------------------------------


def _branch_key(message: Request | Response, method: str) -> tuple[str, str]:
    via = message.top_via
    branch = via.branch or ""
    sent_by = f"{via.host.lower()}:{via.port or 5060}"
    if not branch.startswith(MAGIC_COOKIE):
        # RFC 2543 peer: no unique branch, fall back to the dialog-ish identifiers (17.2.3).
        branch = f"2543|{message.call_id}|{message.cseq.seq}|{message.from_.tag}|{branch}"
    return branch, sent_by


def client_key(message: Request | Response) -> TransactionKey:
    """Key of our client transaction: our branch plus the CSeq method (17.1.3)."""
    method = message.cseq.method
    branch, _ = _branch_key(message, method)
    return branch, "", method


def server_key(request: Request) -> TransactionKey:
    """Key of a server transaction: branch, sent-by and method, ACK folded onto INVITE (17.2.3)."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch, sent_by = _branch_key(request, method)
    return branch, sent_by, method


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 3xx-6xx (RFC 3261 17.1.1.3): same branch as the INVITE."""
    headers = Headers()
    headers.add(VIA, invite.headers.get_all(VIA)[0])
    for name in (MAX_FORWARDS, FROM):
        value = invite.headers.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add(TO, response.headers.get(TO) or invite.headers.get(TO) or "")
    headers.add(CALL_ID, invite.call_id)
    headers.add(CSEQ, f"{invite.cseq.seq} ACK")
    for route in invite.headers.get_all(ROUTE):
        headers.add(ROUTE, route)
    return Request("ACK", invite.uri, headers)


def new_server_transaction(request: Request, source: Address, now: float, *, reliable: bool,
                           timers: TimerConfig = DEFAULT_TIMERS) -> ServerTransaction:
    if request.method == "INVITE":
        return InviteServerTransaction(request, source, now, reliable=reliable, timers=timers)
    return NonInviteServerTransaction(request, source, now, reliable=reliable, timers=timers)


def new_client_transaction(request: Request, remote: Address, now: float, *, reliable: bool,
                           timers: TimerConfig = DEFAULT_TIMERS) -> ClientTransaction:
    if request.method == "INVITE":
        return InviteClientTransaction(request, remote, now, reliable=reliable, timers=timers)
    return NonInviteClientTransaction(request, remote, now, reliable=reliable, timers=timers)
