"""What a session sends on each media tick, pure: the RTP sender state of one outgoing stream.

Priority per tick: a key being sent (RFC 4733 event packets, or its in-band tone when no
telephone-event payload type was negotiated) > the prompt being played > the hold-music loop >
comfort silence. The RTP timestamp is a function of the media clock's tick number
(`ts_offset + tick * 160`), so time spent on hold, skipped ticks and events all keep the
timestamp in step with real time.

Idle (nothing plays), two ways:
- comfort silence (`idle_silence=True`, the default): encoded silence on every tick, a continuous stream.
- keep-alive (`idle_silence=False, keepalive_ticks=N`): silence for `IDLE_HANGOVER_TICKS` more ticks (a
  pause between two prompts stays one talkspurt), then one silence packet N ticks after the last packet.
  A stream that stops for good makes NAT bindings expire and far-end latching lose us and trips the
  RTP-timeout hangup many gateways and PBXs have; one packet a second keeps all of them fed (Asterisk sends
  nothing while idle unless told to, and `rtp_keepalive` there sends a comfort-noise packet), while a
  listening turn stops costing 50 `sendto`s a second here and 50 receives at the far end.
(`idle_silence=False, keepalive_ticks=0`: nothing at all while idle.) Sequence numbers count packets
sent (RFC 3550), so they stay consecutive across a gap while the timestamp moves on with the ticks; the
first packet after a tick that sent nothing carries the marker bit (RFC 3551 4.1: a talkspurt begins),
the keep-alive included, so the far end's jitter buffer re-anchors there instead of stretching or
reading a clock jump.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ivr.media.g711 import G711Codec
from ivr.rtp.dtmf import TelephoneEventSender
from ivr.rtp.packet import HeaderWriter, ts_delta

SAMPLES_PER_FRAME = 160
IDLE_HANGOVER_TICKS = 10
"""With keep-alive: idle ticks that still carry silence before the stream falls quiet (0.2 s), so the pause
between two prompts of one turn, or a key and the prompt it starts, stays one talkspurt."""


@dataclass(slots=True, frozen=True)
class EncodedAudio:
    """Audio encoded once into 20 ms payloads for one codec; can be shared by every call playing it."""

    codec: G711Codec
    frames: tuple[bytes, ...]

    @property
    def duration_s(self) -> float:
        return len(self.frames) * SAMPLES_PER_FRAME / 8000.0


_SILENCES: dict[str, bytes] = {}


def _silence(codec: G711Codec) -> bytes:
    """One frame of `codec`'s silence, made once per codec (every stream's idle payload)."""
    frame = _SILENCES.get(codec.name)
    if frame is None:
        frame = _SILENCES[codec.name] = codec.silence(SAMPLES_PER_FRAME)
    return frame


ClipFinished = Callable[[int, bool], None]
"""Called with (frames sent, completed) when the current clip ends or is replaced."""
KeySent = Callable[[], None]


class OutboundStream:
    """Sequence numbers, timestamps and payload choice of one outgoing RTP stream."""

    __slots__ = (
        "codec",
        "ssrc",
        "ts_offset",
        "idle_silence",
        "keepalive_ticks",
        "packets_sent",
        "octets_sent",
        "last_timestamp",
        "_audio",
        "_event_writer",
        "_seq",
        "_silence",
        "_clip",
        "_clip_pos",
        "_on_clip_finished",
        "_loop",
        "_loop_pos",
        "_keys",
        "_tone_frames",
        "_marker",
        "_idle_ticks",
        "_relay_src_ts",
        "_relay_src_ssrc",
    )

    def __init__(
        self,
        codec: G711Codec,
        *,
        ssrc: int,
        ts_offset: int,
        first_seq: int,
        telephone_event_pt: int | None,
        idle_silence: bool = True,
        keepalive_ticks: int = 0,
    ) -> None:
        """`idle_silence`: comfort silence on every idle tick; else, with `keepalive_ticks` N > 0, the
        hangover and then one silence packet every N idle ticks (0: nothing while idle)."""
        self.codec = codec
        self.ssrc = ssrc
        self.ts_offset = ts_offset
        self.idle_silence = idle_silence
        self.keepalive_ticks = keepalive_ticks
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp = ts_offset
        self._audio = HeaderWriter(ssrc, codec.payload_type)
        self._event_writer = (
            HeaderWriter(ssrc, telephone_event_pt) if telephone_event_pt is not None else None
        )
        self._seq = first_seq & 0xFFFF
        self._silence = _silence(codec)
        self._clip: tuple[bytes, ...] = ()
        self._clip_pos = 0
        self._on_clip_finished: ClipFinished | None = None
        self._loop: tuple[bytes, ...] = ()
        self._loop_pos = 0
        self._keys: deque[tuple[TelephoneEventSender | None, deque[bytes], KeySent]] = deque()
        self._tone_frames: deque[bytes] = deque()
        self._marker = True
        self._idle_ticks = 0
        """Idle ticks in a row (counted only when idle ticks may go unsent); reset when audio is queued."""
        self._relay_src_ts: int | None = None
        self._relay_src_ssrc: int | None = None

    @property
    def playing(self) -> bool:
        return self._on_clip_finished is not None

    @property
    def sends_events(self) -> bool:
        return self._event_writer is not None

    def timestamp_at(self, tick: int) -> int:
        return (self.ts_offset + tick * SAMPLES_PER_FRAME) & 0xFFFFFFFF

    def play(self, frames: tuple[bytes, ...], on_finished: ClipFinished) -> None:
        """Start a clip now, replacing (and reporting as not completed) any clip playing."""
        self.stop_clip()
        self._clip, self._clip_pos, self._on_clip_finished = frames, 0, on_finished
        self._idle_ticks = 0

    def stop_clip(self) -> None:
        finished = self._on_clip_finished
        if finished is not None:
            self._on_clip_finished = None
            sent, self._clip, self._clip_pos = self._clip_pos, (), 0
            finished(sent, False)

    def set_loop(self, frames: tuple[bytes, ...]) -> None:
        """Audio to repeat whenever no clip plays (music on hold); empty for comfort silence."""
        self._loop, self._loop_pos = frames, 0
        self._idle_ticks = 0

    def send_key(
        self, sender: TelephoneEventSender | None, tone: tuple[bytes, ...], on_sent: KeySent
    ) -> None:
        """Queue a key: RFC 4733 packets from `sender`, or (sender None) in-band `tone` frames."""
        self._keys.append((sender, deque(tone), on_sent))
        self._idle_ticks = 0

    def resume(self) -> None:
        """The next packet starts a talkspurt (marker bit): after hold, a bridge, or a long gap."""
        self._marker = True

    def tick(self, tick: int) -> bytes | None:
        """The packet to send on media tick `tick`, or None to send nothing."""
        timestamp = (self.ts_offset + tick * SAMPLES_PER_FRAME) & 0xFFFFFFFF
        if self._keys:
            packet = self._key_packet(timestamp)
            if packet is not None:
                return packet
        clip = self._clip
        position = self._clip_pos
        if position < len(clip):
            payload = clip[position]
            self._clip_pos = position + 1
        else:
            if self._on_clip_finished is not None:
                finished, self._on_clip_finished = self._on_clip_finished, None
                self._clip, self._clip_pos = (), 0
                finished(position, True)
            loop = self._loop
            if loop:
                position = self._loop_pos
                payload = loop[position]
                self._loop_pos = position + 1 if position + 1 < len(loop) else 0
            elif self.idle_silence:
                payload = self._silence
            else:
                idle = self._idle_ticks = self._idle_ticks + 1
                every = self.keepalive_ticks
                # The keep-alive goes `every` ticks of media time after the last packet, skipped ticks included.
                if every and (
                    idle <= IDLE_HANGOVER_TICKS
                    or ts_delta(timestamp, self.last_timestamp) >= every * SAMPLES_PER_FRAME
                ):
                    payload = self._silence
                else:
                    self._marker = True  # whatever is sent next starts a talkspurt
                    return None
        seq = self._seq = (self._seq + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self.last_timestamp = timestamp
        marker, self._marker = self._marker, False
        return self._audio.write(seq, timestamp, payload, marker)

    def _key_packet(self, timestamp: int) -> bytes | None:
        sender, tone, on_sent = self._keys[0]
        if sender is None:
            payload = tone.popleft() if tone else None
            if not tone:
                self._keys.popleft()
                on_sent()
            if payload is None:
                return None
            return self._count(self._audio.write(self._next_seq(), timestamp, payload), timestamp)
        event = sender.next_packet(timestamp)
        if sender.done:
            self._keys.popleft()
            self._marker = True
            on_sent()
        if event is None or self._event_writer is None:
            return None
        packet = self._event_writer.write(self._next_seq(), event.timestamp, event.payload, event.marker)
        return self._count(packet, timestamp)

    def relay(
        self, payload: bytes, src_timestamp: int, src_ssrc: int, marker: bool, event: bool, tick: int
    ) -> bytes | None:
        """A packet from the other leg of a bridge, renumbered into this stream.

        Timestamps follow the source's spacing, anchored to our media clock at the first relayed
        packet and whenever the source changes SSRC or jumps; the marker then flags the discontinuity.
        """
        writer = self._event_writer if event else self._audio
        if writer is None:
            return None
        if (
            self._relay_src_ssrc != src_ssrc
            or self._relay_src_ts is None
            or abs(ts_delta(src_timestamp, self._relay_src_ts)) > 8000 * 5
        ):
            timestamp = self.timestamp_at(tick)
            marker = True
        else:
            timestamp = (self.last_timestamp + ts_delta(src_timestamp, self._relay_src_ts)) & 0xFFFFFFFF
        self._relay_src_ts, self._relay_src_ssrc = src_timestamp, src_ssrc
        marker = marker or self._marker
        self._marker = False
        packet = writer.write(self._next_seq(), timestamp, payload, marker)
        return self._count(packet, timestamp)

    def end_relay(self) -> None:
        self._relay_src_ts = self._relay_src_ssrc = None
        self._marker = True
        self._idle_ticks = 0

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _count(self, packet: bytes, timestamp: int) -> bytes:
        self.packets_sent += 1
        self.octets_sent += len(packet) - 12
        self.last_timestamp = timestamp
        return packet
