"""The transaction layer: routes messages to transactions by key and hands new requests to the TU.

Pure like the transactions it holds: the transport adapter feeds it datagrams and the time, sends what
`datagrams_to_send()` returns and arms one timer for `next_deadline()`. Deadlines of every transaction
(and of the UAS core's 2xx retransmissions, added with `add_timed`) sit in one heap with lazy deletion,
so finding the next wake-up is O(log n) however many calls are up.

What it does on its own, so the TU never sees it:

* absorbs request retransmissions (the server transaction answers them) and response retransmissions;
* answers a new INVITE with 100 Trying when the TU has not answered it within 200 ms (RFC 3261 17.2.1);
* answers CANCEL: 200 and an `InviteCancelled` event when it matches a pending INVITE, 481 when not;
* stamps `received`/`rport` on the top Via of requests (RFC 3261 18.2.1, RFC 3581), while responses go
  back to the address the request came from;
* answers unparseable requests with the parse error's status and reason, and drops bad responses;
* drops new requests beyond `max_server_transactions` live server transactions.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol

from ivr.sip.builders import build_error_response, build_response
from ivr.sip.errors import SipParseError
from ivr.sip.events import (
    Address,
    InviteCancelled,
    LayerEvent,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
)
from ivr.sip.headers import VIA
from ivr.sip.message import Request, Response
from ivr.sip.parser import parse_message
from ivr.sip.transaction import (
    DEFAULT_TIMERS,
    ClientTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionKey,
    TxState,
    client_key,
    new_client_transaction,
    new_server_transaction,
    server_key,
)


class Timed(Protocol):
    """Anything the layer wakes on a deadline: transactions, 2xx retransmissions."""

    @property
    def terminated(self) -> bool: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> list[LayerEvent]: ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...


class TransactionLayer:
    """All transactions of one transport, keyed per RFC 3261 17.1.3 / 17.2.3."""

    __slots__ = ("reliable", "timers", "max_server_transactions", "dropped_over_capacity", "_clients", "_servers",
                 "_heap", "_armed", "_order", "_outbox")

    def __init__(self, *, reliable: bool = False, timers: TimerConfig = DEFAULT_TIMERS,
                 max_server_transactions: int | None = None) -> None:
        self.reliable = reliable
        """True over TCP: no retransmissions, wait states end at once."""
        self.timers = timers
        self.max_server_transactions = max_server_transactions
        """Beyond this many live server transactions a new request is dropped (issue #15: each one lives up to
        32 s, so a flood of fresh INVITEs would otherwise grow memory without bound)."""
        self.dropped_over_capacity = 0
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._heap: list[tuple[float, int, Timed]] = []
        self._armed: dict[Timed, float] = {}
        self._order = itertools.count()
        self._outbox: list[tuple[bytes, Address]] = []

    # -- input ----------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> list[LayerEvent]:
        """Parse and route one datagram (or one framed TCP message)."""
        try:
            message = parse_message(data)
        except SipParseError as exc:
            return self._reject(exc, source, None)
        return self.receive(message, source, now)

    def receive(self, message: Request | Response, source: Address, now: float) -> list[LayerEvent]:
        """Route a parsed message; a header that fails to parse on access is answered like bad bytes."""
        try:
            if isinstance(message, Response):
                return self._on_response(message, now)
            return self._on_request(message, source, now)
        except SipParseError as exc:
            return self._reject(exc, source, message)

    def handle_timer(self, now: float) -> list[LayerEvent]:
        """Fire every deadline at or before `now`."""
        events: list[LayerEvent] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, owner = heapq.heappop(heap)
            if self._armed.get(owner) != deadline:
                continue  # stale entry: the owner re-armed or finished since
            del self._armed[owner]
            events.extend(owner.handle_timer(now))
            self._settle(owner, now)
        return events

    # -- output ---------------------------------------------------------------------------------------

    def send_request(self, request: Request, destination: Address, now: float) -> ClientTransaction:
        """Start a client transaction for `request` (not ACK: use `send_stateless`)."""
        tx = new_client_transaction(request, destination, now, reliable=self.reliable, timers=self.timers)
        self._clients[tx.key] = tx
        self._settle(tx, now)
        return tx

    def send_response(self, transaction: ServerTransaction, response: Response, now: float,
                      data: bytes | None = None, to_tag: str | None = None) -> None:
        """Send the TU's response through its server transaction (see `ServerTransaction.send_response`)."""
        transaction.send_response(response, now, data, to_tag)
        self._settle(transaction, now)

    def transport_failed(self, destination: Address, now: float) -> list[LayerEvent]:
        """The transport cannot reach `destination` (a refused TCP connect): fail its client transactions now."""
        events: list[LayerEvent] = []
        for tx in [tx for tx in self._clients.values() if tx.remote == destination]:
            events.extend(tx.transport_failed())
            self._settle(tx, now)
        return events

    def send_stateless(self, message: Request | Response, destination: Address) -> bytes:
        """Send outside any transaction (ACK to a 2xx, a 2xx retransmission); returns the bytes."""
        data = message.serialize()
        self._outbox.append((data, destination))
        return data

    def send_bytes(self, data: bytes, destination: Address) -> None:
        self._outbox.append((data, destination))

    def add_timed(self, owner: Timed, now: float) -> None:
        """Host another deadline owner (the UAS core's 2xx retransmission) in the timer heap."""
        self._settle(owner, now)

    def refresh(self, owner: Timed, now: float) -> None:
        """Collect what `owner` queued after an outside change (e.g. its ACK arrived) and re-arm it."""
        self._settle(owner, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = self._outbox
        self._outbox = []
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and self._armed.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        """Live transactions (client + server)."""
        return len(self._clients) + len(self._servers)

    # -- internals ------------------------------------------------------------------------------------

    def _settle(self, owner: Timed, now: float) -> None:
        """After any input to `owner`: take its datagrams, forget it if finished, re-arm its deadline."""
        self._outbox.extend(owner.datagrams_to_send(now))
        if owner.terminated:
            self._armed.pop(owner, None)
            if isinstance(owner, ClientTransaction):
                if self._clients.get(owner.key) is owner:
                    del self._clients[owner.key]
            elif isinstance(owner, ServerTransaction) and self._servers.get(owner.key) is owner:
                del self._servers[owner.key]
            return
        deadline = owner.next_deadline()
        if deadline is None:
            self._armed.pop(owner, None)
        elif self._armed.get(owner) != deadline:
            self._armed[owner] = deadline
            heapq.heappush(self._heap, (deadline, next(self._order), owner))

    def _on_response(self, response: Response, now: float) -> list[LayerEvent]:
        tx = self._clients.get(client_key(response))
        if tx is None:
            if 200 <= response.status < 300 and response.cseq.method == "INVITE":
                return [ResponseReceived(response, None)]  # 2xx retransmission after Timer M
            return []
        events = tx.receive(response, now)
        self._settle(tx, now)
        return events

    def _on_request(self, request: Request, source: Address, now: float) -> list[LayerEvent]:
        _stamp_via(request, source)
        key = server_key(request)
        tx = self._servers.get(key)
        if tx is not None:
            events = tx.receive(request, now)
            self._settle(tx, now)
            return events
        if request.method == "ACK":
            return [RequestReceived(request, source, None)]
        cap = self.max_server_transactions
        if cap is not None and len(self._servers) >= cap:
            self.dropped_over_capacity += 1
            return []  # silently, like a lost datagram: the peer retransmits once we have room
        tx = new_server_transaction(request, source, now, reliable=self.reliable, timers=self.timers)
        self._servers[key] = tx
        if request.method == "CANCEL":
            return self._on_cancel(tx, request, now)
        self._settle(tx, now)
        return [RequestReceived(request, source, tx)]

    def _on_cancel(self, tx: ServerTransaction, cancel: Request, now: float) -> list[LayerEvent]:
        invite = self._servers.get((tx.key[0], tx.key[1], "INVITE"))
        events: list[LayerEvent] = []
        if invite is None:
            tx.send_response(build_response(cancel, 481), now)
        else:
            tx.send_response(build_response(cancel, 200, to_tag=invite.to_tag), now)
            if invite.state is TxState.PROCEEDING:
                events.append(InviteCancelled(invite, cancel))
        self._settle(tx, now)
        return events

    def _reject(self, error: SipParseError, source: Address, message: Request | Response | None
                ) -> list[LayerEvent]:
        """Answer a bad request with the error's status and reason (never an ACK, never a response)."""
        response: Response | None = None
        if isinstance(message, Request):
            if message.method != "ACK":
                try:
                    response = build_response(message, error.status_hint, error.reason)
                except SipParseError:
                    response = None
        elif message is None and not error.drop and error.method not in (None, "ACK"):
            response = build_error_response(error)
        if response is not None:
            self._outbox.append((response.serialize(), source))
        return [MessageRejected(source, error.reason, response.status if response else 0)]


def _stamp_via(request: Request, source: Address) -> None:
    """Add received= (and rport= when asked) to the top Via, so responses find their way back."""
    via = request.top_via
    has_rport = any(name == "rport" for name, _ in via.params)
    if via.host == source[0] and not has_rport:
        return
    stamped = via.with_param("received", source[0])
    if has_rport:
        stamped = stamped.with_param("rport", str(source[1]))
    values = request.headers.get_all(VIA)
    values[0] = str(stamped)
    request.headers.remove(VIA)
    for value in values:
        request.headers.add(VIA, value)
