"""Events the SIP protocol layers hand upward: past-tense facts, small frozen dataclasses.

Two families:

* transaction-layer events (`TransactionLayer.receive_datagram`, `handle_timer`) that the user agent core
  consumes: a request or response arrived, a transaction timed out, an INVITE was cancelled...
* dialog events a `CallLeg` queues for the application: the peer hung up, sent digits, re-INVITEd,
  asked us to transfer, reported transfer progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.sip.message import Request, Response

if TYPE_CHECKING:
    from ivr.sip.transaction import ClientTransaction, ServerTransaction

Address = tuple[str, int]
"""(host, port) of a peer or of a local socket."""


# --- transaction layer -> user agent core ------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class RequestReceived:
    """A new request arrived (retransmissions are absorbed by its server transaction)."""

    request: Request
    source: Address
    """Where it came from; responses go back here (RFC 3581)."""
    transaction: ServerTransaction | None
    """The server transaction to answer through; None for an ACK to a 2xx (it has no transaction)."""


@dataclass(slots=True, frozen=True)
class ResponseReceived:
    """A response for one of our client transactions (or a stray 2xx retransmission to an INVITE)."""

    response: Response
    transaction: ClientTransaction | None
    """None when no transaction matched: a 2xx retransmission the UAC core must ACK again."""


@dataclass(slots=True, frozen=True)
class TransactionTimedOut:
    """Timer B, F or H fired: no final response (or, for H, no ACK) arrived in time."""

    transaction: ClientTransaction | ServerTransaction


@dataclass(slots=True, frozen=True)
class InviteCancelled:
    """A CANCEL matched a pending INVITE server transaction; the layer answered the CANCEL with 200.

    The TU must now answer the INVITE with 487 Request Terminated.
    """

    invite: ServerTransaction
    cancel: Request


@dataclass(slots=True, frozen=True)
class MessageRejected:
    """Bytes that did not parse as SIP; `status` is what we answered (0 when dropped)."""

    source: Address
    reason: str
    status: int


@dataclass(slots=True, frozen=True)
class AckTimedOut:
    """A 2xx to an INVITE was retransmitted for 64*T1 without an ACK (RFC 3261 13.3.1.4)."""

    call_id: str
    cseq: int


LayerEvent = (
    RequestReceived | ResponseReceived | TransactionTimedOut | InviteCancelled | MessageRejected | AckTimedOut
)


# --- call leg -> application -------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class ByeReceived:
    """The peer hung up."""

    reason: str | None = None
    """The Reason header, when the peer sent one."""


@dataclass(slots=True, frozen=True)
class ReinviteReceived:
    """The peer re-INVITEd (hold, unhold, codec change); the answer has already been sent."""

    offer: bytes
    """The peer's SDP (empty when the peer asked us to offer)."""
    answer: bytes
    held: bool
    """True when the peer's SDP puts the call on hold (sendonly or inactive)."""


@dataclass(slots=True, frozen=True)
class DtmfReceived:
    """A key arrived in a SIP INFO (application/dtmf-relay or application/dtmf)."""

    digit: str
    duration_ms: int


@dataclass(slots=True, frozen=True)
class InfoReceived:
    """A SIP INFO whose body is not a DTMF digit."""

    content_type: str
    body: bytes


@dataclass(slots=True, frozen=True)
class ReferReceived:
    """The peer asked us to transfer the call (blind transfer); we answered 202 Accepted.

    The application places the new call and reports progress with `CallLeg.notify_refer(status)`.
    """

    refer_to: str
    """The Refer-To URI, e.g. `sip:agent7@10.0.0.9`."""
    referred_by: str | None


@dataclass(slots=True, frozen=True)
class TransferNotified:
    """A NOTIFY (message/sipfrag) reported how our REFER is going."""

    status: int
    reason: str
    final: bool
    """True for a final status or a terminated subscription."""


DialogEvent = ByeReceived | ReinviteReceived | DtmfReceived | InfoReceived | ReferReceived | TransferNotified
