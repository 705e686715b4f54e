"""Events the SIP protocol layers hand upward: past-tense facts, small frozen dataclasses.

Three families:

* transaction-layer events (`TransactionLayer.receive_datagram`, `handle_timer`) that the endpoint
  consumes: a request or response arrived, a transaction timed out, an INVITE was cancelled...
* endpoint events (`SipEndpoint.next_event()`) for the user agent: a call was offered, cancelled,
  confirmed by its ACK, a dialog got a request or ended; client-transaction responses pass through.
* dialog events a `CallLeg` queues for the application: the peer hung up, sent digits, re-INVITEd,
  asked us to transfer, reported transfer progress.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.sip.message import Request, Response

if TYPE_CHECKING:
    from ivr.sip.sdp import SessionDescription
    from ivr.sip.transaction import ClientTransaction, ServerTransaction

DialogKey = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""

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


@dataclass(slots=True, frozen=True)
class TransportFailed:
    """The transport could not deliver a client transaction's request (RFC 3261 17.1.4): a refused TCP connect."""

    transaction: ClientTransaction


LayerEvent = (
    RequestReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransportFailed
    | InviteCancelled
    | MessageRejected
    | AckTimedOut
)


# --- endpoint -> user agent --------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class CallOffered:
    """A new INVITE passed admission (100 Trying is sent): ring it, answer it or reject it."""

    request: Request
    transaction: ServerTransaction
    source: Address
    local_tag: str
    """The To tag every response to this INVITE carries."""
    offer: SessionDescription | None
    """The caller's SDP, parsed once here (None when the INVITE has no body: we offer in the 200)."""


@dataclass(slots=True, frozen=True)
class CallCancelled:
    """The caller CANCELed a call we had not answered; the endpoint answered 200 (CANCEL) and 487 (INVITE)."""

    transaction: ServerTransaction


class DialogEndReason(enum.Enum):
    """Why the endpoint ended a dialog on its own."""

    REMOTE_BYE = "remote_bye"
    """The peer sent BYE (answered 200 by the endpoint)."""
    NO_ACK = "no_ack"
    """Our 2xx got no ACK for 64*T1 (RFC 3261 13.3.1.4); the endpoint sent BYE."""


@dataclass(slots=True, frozen=True)
class AckReceived:
    """The ACK to our 2xx arrived: its retransmission stopped (the ACK may carry the SDP answer)."""

    key: DialogKey
    ack: Request


@dataclass(slots=True, frozen=True)
class DialogRequestReceived:
    """An in-dialog request (not BYE) that passed the dialog's CSeq and glare checks; answer it."""

    key: DialogKey
    request: Request
    transaction: ServerTransaction


@dataclass(slots=True, frozen=True)
class DialogEnded:
    """The endpoint ended a dialog: the peer's BYE (already answered 200), or no ACK to our 2xx."""

    key: DialogKey
    reason: DialogEndReason
    bye: Request | None
    """The peer's BYE, when it was one."""


EndpointEvent = (
    CallOffered
    | CallCancelled
    | AckReceived
    | DialogRequestReceived
    | DialogEnded
    | ResponseReceived
    | TransactionTimedOut
    | TransportFailed
    | MessageRejected
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
class DtmfInfoReceived:
    """A key arrived in a SIP INFO (application/dtmf-relay or application/dtmf); RTP keys are `ivr.rtp`'s."""

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


DialogEvent = ByeReceived | ReinviteReceived | DtmfInfoReceived | InfoReceived | ReferReceived | TransferNotified
