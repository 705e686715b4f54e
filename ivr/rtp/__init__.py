"""RTP media for calls: packets, RTCP, jitter buffer, RFC 4733 keys, the shared media clock, sessions."""

from __future__ import annotations

from ivr.rtp.dtmf import TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender
from ivr.rtp.engine import MediaEngine
from ivr.rtp.errors import MediaStateError, PortsExhausted, RtpError, RtpParseError
from ivr.rtp.events import DtmfReceived, DtmfSource, HoldMode, PlayOutcome, PlayResult
from ivr.rtp.jitter import JitterBuffer, JitterConfig
from ivr.rtp.outbound import EncodedAudio
from ivr.rtp.packet import RtpPacket
from ivr.rtp.ports import PortAllocator
from ivr.rtp.probe import MediaProbe
from ivr.rtp.rtcp import ReceiverReport, ReportBlock, SenderReport, parse_rtcp
from ivr.rtp.scheduler import MediaScheduler, TickClock
from ivr.rtp.session import MediaParams, MediaSession

__all__ = [
    "DtmfReceived",
    "DtmfSource",
    "EncodedAudio",
    "HoldMode",
    "JitterBuffer",
    "JitterConfig",
    "MediaEngine",
    "MediaParams",
    "MediaProbe",
    "MediaScheduler",
    "MediaSession",
    "MediaStateError",
    "PlayOutcome",
    "PlayResult",
    "PortAllocator",
    "PortsExhausted",
    "ReceiverReport",
    "ReportBlock",
    "RtpError",
    "RtpPacket",
    "RtpParseError",
    "SenderReport",
    "TelephoneEvent",
    "TelephoneEventReceiver",
    "TelephoneEventSender",
    "TickClock",
    "parse_rtcp",
]
