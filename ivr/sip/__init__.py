"""Sans-I/O SIP: wire format (message, uri, headers, sdp, digest), transactions, dialogs, the pure
`SipEndpoint`, and the one I/O adapter (`SipTransport`: sockets and one timer).

The user agent the application awaits (UserAgent, IncomingCall, OutgoingCall, CallLeg, Registration) is
`ivr.sipua`, a layer above: it imports this package, never the reverse.
Other packages import from here; the modules inside are this package's business.
"""

from __future__ import annotations

from ivr.sip import compiled as _compiled

# First, before any module of the package is imported: a checkout's compiled build, when it matches the sources.
__path__ = _compiled.search_path(__path__)

from ivr.sip.authorize import Credentials, authorized_retry
from ivr.sip.builders import build_cancel, build_error_response, build_response
from ivr.sip.compiled import running_compiled
from ivr.sip.digest import (
    DigestChallenge,
    DigestCredentials,
    NonceIssuer,
    NonceStatus,
    make_authorization,
    verify_authorization,
)
from ivr.sip.endpoint import SipEndpoint
from ivr.sip.errors import AuthError, SdpError, SdpNegotiationError, SipError, SipParseError, TransactionError
from ivr.sip.events import (
    ByeReceived,
    DtmfInfoReceived,
    InfoReceived,
    ReferReceived,
    ReinviteReceived,
    TransferNotified,
)
from ivr.sip.framing import StreamFramer
from ivr.sip.headers import CSeq, Headers, NameAddr, Via, canonical_name
from ivr.sip.message import Request, Response, new_branch, new_call_id, new_tag
from ivr.sip.parser import parse_message
from ivr.sip.registrar import Binding, Registrar
from ivr.sip.sdp import (
    Direction,
    MediaDescription,
    NegotiatedMedia,
    SessionDescription,
    answer_offer,
    make_offer,
    negotiated_codec,
)
from ivr.sip.transport import SipTransport, TransportKind
from ivr.sip.uri import SipUri

__all__ = [
    "ByeReceived",
    "Credentials",
    "DtmfInfoReceived",
    "InfoReceived",
    "ReferReceived",
    "ReinviteReceived",
    "Binding",
    "Registrar",
    "SipEndpoint",
    "SipTransport",
    "TransferNotified",
    "TransportKind",
    "AuthError",
    "CSeq",
    "DigestChallenge",
    "DigestCredentials",
    "Direction",
    "Headers",
    "MediaDescription",
    "NameAddr",
    "NegotiatedMedia",
    "NonceIssuer",
    "NonceStatus",
    "Request",
    "Response",
    "SdpError",
    "SdpNegotiationError",
    "SessionDescription",
    "SipError",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "TransactionError",
    "Via",
    "answer_offer",
    "authorized_retry",
    "build_cancel",
    "build_error_response",
    "build_response",
    "canonical_name",
    "make_authorization",
    "make_offer",
    "negotiated_codec",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "running_compiled",
    "verify_authorization",
]
