"""RTP media for calls: packets, RTCP, jitter buffer, RFC 4733 keys, the shared media clock, sessions."""

from __future__ import annotations

from ivr.rtp.address import MediaRefusal, OfferAssessment, OfferVerdict, assess_offer, can_reach
from ivr.rtp.dtmf import TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender
from ivr.rtp.engine import MediaEngine
from ivr.rtp.errors import (
    MediaFailedError,
    MediaStateError,
    PlaybackStalled,
    PortsExhausted,
    RtpError,
    RtpParseError,
)
from ivr.rtp.events import (
    DtmfReceived,
    DtmfSource,
    HoldMode,
    MediaFailed,
    MediaFailure,
    PlayOutcome,
    PlayResult,
)
from ivr.rtp.gate import LATCH_WINDOW_S
from ivr.rtp.health import MediaCounters
from ivr.rtp.jitter import JitterBuffer, JitterConfig
from ivr.rtp.net import DatagramNetwork, DatagramPort, UdpNetwork
from ivr.rtp.outbound import EncodedAudio
from ivr.rtp.packet import RtpPacket
from ivr.rtp.params import MediaParams
from ivr.rtp.ports import PortAllocator
from ivr.rtp.rtcp import ReceiverReport, ReportBlock, SenderReport, parse_rtcp
from ivr.rtp.scheduler import MediaScheduler, TickClock
from ivr.rtp.session import MediaSession
from ivr.rtp.srtp import SrtpKeys

__all__ = [
    "LATCH_WINDOW_S",
    "DatagramNetwork",
    "DatagramPort",
    "DtmfReceived",
    "DtmfSource",
    "EncodedAudio",
    "HoldMode",
    "JitterBuffer",
    "JitterConfig",
    "MediaCounters",
    "MediaEngine",
    "MediaFailed",
    "MediaFailedError",
    "MediaFailure",
    "MediaParams",
    "MediaRefusal",
    "MediaScheduler",
    "MediaSession",
    "MediaStateError",
    "OfferAssessment",
    "OfferVerdict",
    "PlayOutcome",
    "PlayResult",
    "PlaybackStalled",
    "PortAllocator",
    "PortsExhausted",
    "ReceiverReport",
    "ReportBlock",
    "RtpError",
    "RtpPacket",
    "RtpParseError",
    "SenderReport",
    "SrtpKeys",
    "TelephoneEvent",
    "TelephoneEventReceiver",
    "TelephoneEventSender",
    "TickClock",
    "UdpNetwork",
    "assess_offer",
    "can_reach",
    "parse_rtcp",
]
