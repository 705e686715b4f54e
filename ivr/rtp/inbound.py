"""What a session does with each received RTP datagram, pure: check, latch, count, reorder, decode.

`InboundStream.receive(data, source, now)` returns a `Received` (or None for a packet we drop):
the header fields (for a bridge to relay), the keys that started (RFC 4733 and in-band) and the
decoded 160-sample frames that became ready in order (losses concealed with silence, timestamp
gaps from silence suppression filled with silence). Decoding and the jitter buffer run only while
someone wants audio (`want_audio`), so an idle call costs one header unpack per packet.

Sources: a `SourceGate` decides which addresses the stream accepts (the SDP's, or in NAT mode the
one it latches to once; see `ivr.rtp.gate`); a packet from anyone else is dropped and counted.
Datagrams over `MAX_DATAGRAM_BYTES` are dropped unread: a 64 KB packet would be 8 s of audio fed to
the recognizer in one go (issue 15).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ivr.media.g711 import G711Codec
from ivr.media.goertzel import DtmfDetector
from ivr.rtp.address import Address
from ivr.rtp.dtmf import TelephoneEventReceiver
from ivr.rtp.errors import RtpParseError
from ivr.rtp.events import DtmfSource
from ivr.rtp.gate import Admission, SourceGate
from ivr.rtp.health import MediaCounters
from ivr.rtp.jitter import JitterBuffer, JitterConfig, PlayoutFrame
from ivr.rtp.packet import RtpPacket, ts_delta
from ivr.rtp.rtcp import ReceptionStats

FRAME_SAMPLES = 160
MAX_DATAGRAM_BYTES = 1472
"""The UDP payload of one 1500-byte Ethernet frame: 180 ms of G.711 with a full RTP header. Bigger
RTP or RTCP datagrams are not a phone's (20-60 ms packets) and are dropped."""
_FAST_HEADER = struct.Struct("!BBHII")
_EMPTY = np.zeros(0, dtype=np.int16)
_MAX_FILLED_GAP_SAMPLES = 8000
"""Silence inserted for a timestamp gap (silence suppression) is capped at one second."""


@dataclass(slots=True)
class Received:
    """One accepted RTP packet and what it caused."""

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes
    is_event: bool
    """A telephone-event packet rather than audio."""
    frames: list[NDArray[np.int16]] = field(default_factory=list)
    keys: list[tuple[str, DtmfSource]] = field(default_factory=list)
    latched: Address | None = None
    """Set on the stream's first packet: the source it is now latched to."""


class InboundStream:
    def __init__(
        self,
        codec: G711Codec,
        *,
        telephone_event_pt: int | None,
        inband_dtmf: bool,
        gate: SourceGate,
        jitter: JitterConfig | None = None,
        counters: MediaCounters | None = None,
    ) -> None:
        self.codec = codec
        self.telephone_event_pt = telephone_event_pt
        self.gate = gate
        """Which sources are accepted; replaced when a re-INVITE names another address."""
        self.want_audio = inband_dtmf
        self.remote_ssrc: int | None = None
        self.stats = ReceptionStats()
        self.counters = counters if counters is not None else MediaCounters()
        """Shared with the engine's other sessions (the totals `/metrics` reads)."""
        self.events = TelephoneEventReceiver()
        self.detector = DtmfDetector() if inband_dtmf else None
        self.jitter = JitterBuffer(jitter or JitterConfig())
        self._jitter_config = jitter or JitterConfig()
        self._next_ts: int | None = None
        """Timestamp the next audio packet should carry (the last one's plus its samples)."""
        self._frame_samples = FRAME_SAMPLES
        self._leftover = _EMPTY

    @property
    def source(self) -> Address | None:
        """The source the stream is latched to (where its packets come from), None before the first."""
        return self.gate.source

    def receive(self, data: bytes, source: Address, now: float) -> Received | None:
        if len(data) > MAX_DATAGRAM_BYTES:
            self.counters.oversize += 1
            return None
        # Per packet, every call saved counts (issue 22): the usual header is read here, not in `_parse`.
        if len(data) >= 12 and data[0] == 0x80:  # no padding, extension or CSRC
            _, second, seq, timestamp, ssrc = _FAST_HEADER.unpack_from(data)
            packet = Received(second & 0x7F, bool(second & 0x80), seq, timestamp, ssrc, data[12:], False)
        else:
            parsed = self._parse(data)
            if parsed is None:
                return None
            packet = parsed
        pt = packet.payload_type
        is_event = pt == self.telephone_event_pt
        packet.is_event = is_event
        if not is_event and pt != self.codec.payload_type:
            self.counters.unknown_payload_type += 1
            return None
        admission = self.gate.admit(source, now)
        if admission is Admission.REFUSED:
            self.counters.wrong_source += 1
            return None
        self.counters.received += 1
        if packet.ssrc != self.remote_ssrc:
            self.remote_ssrc = packet.ssrc
        self.stats.update(packet.sequence_number, packet.timestamp, now, timing=not is_event)
        if admission is Admission.LATCHED:
            packet.latched = source
        if is_event:
            try:
                digit = self.events.receive(packet.timestamp, packet.marker, packet.payload, now)
            except RtpParseError:
                self.counters.malformed += 1
                return None
            if digit is not None:
                packet.keys.append((digit, DtmfSource.RFC4733))
        elif self.want_audio:
            if self.jitter.release_in_order(packet.sequence_number, packet.timestamp, now):
                self._play_next(packet)
            else:
                self.jitter.push(packet.sequence_number, packet.timestamp, packet.payload, now)
                self._play_out(packet, now)
        return packet

    def flush(self) -> list[NDArray[np.int16]]:
        """Frames still held in the jitter buffer (call before reading a finished recording)."""
        out = Received(0, False, 0, 0, 0, b"", False)
        self._frames_from(self.jitter.flush(), out)
        return out.frames

    def set_want_audio(self, wanted: bool) -> None:
        wanted = wanted or self.detector is not None
        if wanted and not self.want_audio:
            self.jitter = JitterBuffer(self._jitter_config)
            self._next_ts = None
            self._leftover = _EMPTY
        self.want_audio = wanted

    def _parse(self, data: bytes) -> Received | None:
        """Any other header (padding, extension, CSRC, or not RTP version 2): the full parse."""
        try:
            p = RtpPacket.parse(data)
        except RtpParseError:
            self.counters.malformed += 1
            return None
        return Received(p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc, p.payload, False)

    def _play_next(self, packet: Received) -> None:
        """Decode the packet the jitter buffer released at once (the next in order, nothing held)."""
        payload, timestamp = packet.payload, packet.timestamp
        expected = self._next_ts
        if self._leftover.size or len(payload) != FRAME_SAMPLES or expected is not None and timestamp != expected:
            self._frames_from([PlayoutFrame(packet.sequence_number, timestamp, payload)], packet)
            return
        pcm = self.codec.decode(payload)  # the usual case: one whole 20 ms frame, right after the last
        self._frame_samples = FRAME_SAMPLES
        self._next_ts = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        packet.frames.append(pcm)
        if self.detector is not None:
            for digit, _ in self.detector.feed(pcm):
                packet.keys.append((digit, DtmfSource.INBAND))

    def _play_out(self, packet: Received, now: float) -> None:
        frames = self.jitter.pop(now)
        if frames:
            self._frames_from(frames, packet)

    def _frames_from(self, frames: list[PlayoutFrame], out: Received) -> None:
        """Decode released packets into 160-sample frames (any ptime), filling timestamp gaps with silence."""
        decode = self.codec.decode
        chunks = [self._leftover] if self._leftover.size else []
        for frame in frames:
            if self._next_ts is not None:
                gap = ts_delta(frame.timestamp, self._next_ts)
                if 0 < gap <= _MAX_FILLED_GAP_SAMPLES:
                    chunks.append(np.zeros(gap, dtype=np.int16))
            if frame.payload is not None:
                pcm = decode(frame.payload)
                self._frame_samples = pcm.size or self._frame_samples
            else:
                pcm = np.zeros(self._frame_samples, dtype=np.int16)
            chunks.append(pcm)
            self._next_ts = (frame.timestamp + pcm.size) & 0xFFFFFFFF
        if len(chunks) == 1 and chunks[0].size == FRAME_SAMPLES:  # the usual case: one 20 ms packet
            out.frames.append(chunks[0])
            self._leftover = _EMPTY
        elif chunks:
            self._reframe(chunks, out)
        if self.detector is not None:
            for pcm in out.frames:
                for digit, _ in self.detector.feed(pcm):
                    out.keys.append((digit, DtmfSource.INBAND))

    def _reframe(self, chunks: list[NDArray[np.int16]], out: Received) -> None:
        samples = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        whole = samples.size - samples.size % FRAME_SAMPLES
        out.frames.extend(samples[i : i + FRAME_SAMPLES] for i in range(0, whole, FRAME_SAMPLES))
        self._leftover = samples[whole:]
