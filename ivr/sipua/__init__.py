"""The asyncio SIP user agent the application uses: answer and place calls, drive call legs, register.

`UserAgent` runs over one `ivr.sip.SipTransport` (the adapter around the pure `ivr.sip.SipEndpoint`) and
turns the endpoint's events into awaitable objects: `IncomingCall` (ring, answer, reject), `OutgoingCall`
(answered, cancel), `CallLeg` (the confirmed dialog: events, BYE, re-INVITE, hold, INFO, REFER) and
`Registration` (REGISTER at a trunk, kept fresh). Wire formats and protocol state live in `ivr.sip`; this
package imports it, never the reverse.
"""

from __future__ import annotations

from ivr.sip.authorize import Credentials
from ivr.sipua.calls import CallFailed, IncomingCall, OutgoingCall
from ivr.sipua.leg import CallLeg, OfferHandler, ReinviteFailed
from ivr.sipua.registration import Registration, RegistrationFailed
from ivr.sipua.useragent import IncomingCallHandler, UserAgent

__all__ = [
    "CallFailed",
    "CallLeg",
    "Credentials",
    "IncomingCall",
    "IncomingCallHandler",
    "OfferHandler",
    "OutgoingCall",
    "ReinviteFailed",
    "Registration",
    "RegistrationFailed",
    "UserAgent",
]
