"""RFC 4733 telephone events: the payload on the wire, and pure receive and send logic.

Receiving: one key press is one *event*, identified by its RTP timestamp; the sender repeats it
every packet interval with a growing duration and ends it with (usually three) packets carrying
the E bit. `TelephoneEventReceiver` reports each event once, at its first packet, so barge-in is
immediate, and ignores the continuation and redundant end packets. The same key pressed twice is
two events with two timestamps, hence two digits.

One real-world wrinkle: a test tool that replays the same capture twice (SIPp `play_pcap_audio`
with one `dtmf_2833_1.pcap`) sends the *same* timestamp and sequence numbers again. An event whose
end was already seen is therefore started again by a packet with the marker bit, or by a
non-end packet arriving more than `reorder_window_s` after that end (a late reordered packet of
the old event arrives within the window).

Sending: `TelephoneEventSender` yields, one per 20 ms tick, the packets of one event: the first
with the marker bit, then growing durations, then the end packet three times.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from ivr.rtp.errors import RtpParseError

EVENT_CODES = "0123456789*#ABCD"
"""Event codes 0-15 (RFC 4733 section 3.2); 16 (flash) and above are not keys and are ignored."""
_PAYLOAD = struct.Struct("!BBH")


def event_code(digit: str) -> int:
    code = EVENT_CODES.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF key (expected one of {EVENT_CODES})")
    return code


@dataclass(slots=True, frozen=True)
class TelephoneEvent:
    """The 4-byte telephone-event payload (RFC 4733 section 2.3)."""

    event: int
    end: bool
    volume: int
    """Power level, 0 to -63 dBm0, written as 0..63."""
    duration: int
    """Duration so far, in timestamp units."""

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpParseError("telephone-event payload is less than 4 bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)

    @property
    def digit(self) -> str | None:
        return EVENT_CODES[self.event] if self.event < len(EVENT_CODES) else None


@dataclass(slots=True)
class _EventState:
    event: int
    ended_at: float | None = None


@dataclass(slots=True)
class TelephoneEventReceiver:
    """Turns a stream of telephone-event packets into key presses, each reported once."""

    reorder_window_s: float = 0.1
    remembered_events: int = 16
    _events: OrderedDict[int, _EventState] = field(default_factory=OrderedDict)
    _current: int | None = None
    """Timestamp of the most recent event, for long-event segments (RFC 4733 2.5.1.3)."""

    def receive(self, timestamp: int, marker: bool, payload: bytes, now: float) -> str | None:
        """Feed one packet (the RTP timestamp, marker bit and payload); the digit if a new press starts."""
        event = TelephoneEvent.parse(payload)
        state = self._events.get(timestamp)
        if state is not None and state.event == event.event:
            if state.ended_at is None:
                if event.end:
                    state.ended_at = now
                return None
            restarted = not event.end and (marker or now - state.ended_at > self.reorder_window_s)
            if not restarted:
                return None
        elif state is None and not marker and self._continues_long_event(event):
            # the next segment of a long press: new timestamp, same key, no marker, previous not ended
            self._remember(timestamp, _EventState(event.event, now if event.end else None))
            return None
        self._remember(timestamp, _EventState(event.event, now if event.end else None))
        return event.digit

    def _continues_long_event(self, event: TelephoneEvent) -> bool:
        if self._current is None:
            return False
        previous = self._events.get(self._current)
        return previous is not None and previous.ended_at is None and previous.event == event.event

    def _remember(self, timestamp: int, state: _EventState) -> None:
        self._events[timestamp] = state
        self._events.move_to_end(timestamp)
        self._current = timestamp
        while len(self._events) > self.remembered_events:
            self._events.popitem(last=False)


@dataclass(slots=True, frozen=True)
class EventPacket:
    """One telephone-event packet to send: its payload, marker bit and RTP timestamp."""

    payload: bytes
    marker: bool
    timestamp: int


@dataclass(slots=True)
class TelephoneEventSender:
    """The packets of one key press, one per tick: start, continuations, then the end sent three times."""

    digit: str
    duration_ms: int = 100
    volume: int = 10
    samples_per_tick: int = 160
    end_repeats: int = 3
    _ticks: int = 0
    _start_timestamp: int = 0

    def __post_init__(self) -> None:
        event_code(self.digit)

    @property
    def done(self) -> bool:
        return self._ticks >= self._tone_ticks + self.end_repeats - 1

    @property
    def _tone_ticks(self) -> int:
        return max(1, -(-self.duration_ms * 8 // self.samples_per_tick))

    def next_packet(self, timestamp: int) -> EventPacket | None:
        """The packet for this tick (`timestamp`: the media clock now), or None once fully sent.

        The event keeps the timestamp of the tick it started on (RFC 4733 2.5.1.1).
        """
        if self.done:
            return None
        if self._ticks == 0:
            self._start_timestamp = timestamp
        self._ticks += 1
        tone_ticks = self._tone_ticks
        duration = min(min(self._ticks, tone_ticks) * self.samples_per_tick, 0xFFFF)
        end = self._ticks >= tone_ticks
        payload = TelephoneEvent(event_code(self.digit), end, self.volume, duration).serialize()
        return EventPacket(payload, self._ticks == 1, self._start_timestamp)
