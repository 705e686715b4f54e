"""One call's media: RTP and RTCP sockets, sending on the shared media clock, the call-layer API.

The only module of the package (with `scheduler`) that touches sockets and the loop. It glues the
pure parts: `OutboundStream` decides each tick's packet, `InboundStream` handles each datagram,
`rtcp` builds and reads reports. The call layer gets the session from `MediaEngine.open_session()`
(which binds the ports for the SDP answer), then calls `start(MediaParams(...))` once SDP is
negotiated, and `close()` when the call ends (or uses `async with`).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.clock import Clock
from ivr.media.bridge import Bridge, Forward, RelayedPacket
from ivr.media.g711 import G711Codec, codec_for_payload_type
from ivr.media.tones import dtmf_tone, silence
from ivr.rtp.dtmf import TelephoneEventSender, event_code
from ivr.rtp.errors import MediaStateError, RtpParseError
from ivr.rtp.events import DtmfReceived, DtmfSource, HoldMode, PlayOutcome, PlayResult
from ivr.rtp.inbound import Address, InboundStream, Received
from ivr.rtp.outbound import EncodedAudio, OutboundStream
from ivr.rtp.packet import is_rtcp
from ivr.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    SenderReport,
    compound_report,
    ntp_timestamp,
    parse_rtcp,
    round_trip_s,
)
from ivr.rtp.scheduler import MediaScheduler

if TYPE_CHECKING:
    from ivr.rtp.engine import MediaEngine

log = structlog.get_logger(__name__)

AudioConsumer = Callable[[NDArray[np.int16]], None]
DtmfListener = Callable[[DtmfReceived], None]
FRAME_S = 0.02


@dataclass(slots=True, frozen=True)
class MediaParams:
    """What SDP negotiation decided for this call's audio."""

    remote: Address
    """The peer's RTP address and port from its SDP (c= and m= lines)."""
    payload_type: int = 0
    """0 PCMU or 8 PCMA."""
    telephone_event_pt: int | None = 101
    """The negotiated telephone-event payload type, None if the peer offered none."""
    remote_rtcp: Address | None = None
    """From a=rtcp; by default the RTP port + 1."""
    inband_dtmf: bool | None = None
    """Detect keys in the audio; None means only when no telephone-event type was negotiated."""
    symmetric: bool = True
    """Send to where the peer's packets come from (NAT latching) rather than only the SDP address."""


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp_socket_error", error=str(exc))  # ICMP port unreachable while the peer is not up yet


class MediaSession:
    """The media of one call leg. Build with `MediaEngine.open_session()`."""

    def __init__(
        self,
        engine: MediaEngine,
        *,
        local: Address,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        rtp_endpoint: _Endpoint,
        rtcp_endpoint: _Endpoint,
        call_id: str | None,
    ) -> None:
        self._engine = engine
        self._scheduler: MediaScheduler = engine.scheduler
        self._clock: Clock = engine.clock
        self.local = local
        self.call_id = call_id
        self._rtp = rtp
        self._rtcp = rtcp
        rtp_endpoint.on_datagram = self._on_rtp
        rtcp_endpoint.on_datagram = self._on_rtcp
        self._key = object()
        self._log = log.bind(call_id=call_id, local_port=local[1])
        self._params: MediaParams | None = None
        self._inbound: InboundStream | None = None
        self._outbound: OutboundStream | None = None
        self._target: Address | None = None
        self._rtcp_target: Address | None = None
        self._rtcp_latched = False
        self._consumers: list[AudioConsumer] = []
        self._dtmf_listeners: list[DtmfListener] = []
        self._play_future: asyncio.Future[PlayResult] | None = None
        self._play_stop_reason = PlayOutcome.STOPPED
        self._barge_in = False
        self._pending_keys: list[asyncio.Future[None]] = []
        self._hold: HoldMode | None = None
        self._bridge: Bridge | None = None
        self._relay: Forward | None = None
        self._closed = False
        self._closers: list[Callable[[], object]] = []
        """Wake-ups for waiters (event streams, recordings) when the session closes."""
        self._packets_at_last_report = 0
        self.rtt_s: float | None = None
        """Round-trip time from the last RTCP receiver report about our stream."""

    # ------------------------------------------------------------------ set-up

    @property
    def local_port(self) -> int:
        return self.local[1]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def codec(self) -> G711Codec:
        return self._streams()[1].codec

    @property
    def remote(self) -> Address | None:
        """Where we send RTP: the latched source, or the SDP address until a packet arrives."""
        return self._target

    @property
    def inbound(self) -> InboundStream | None:
        return self._inbound

    @property
    def outbound(self) -> OutboundStream | None:
        return self._outbound

    def start(self, params: MediaParams) -> None:
        """Begin media with the negotiated parameters (again on a re-INVITE that changes them)."""
        self._check_open()
        codec = codec_for_payload_type(params.payload_type)
        previous = self._params
        self._params = params
        self._target = params.remote
        if not self._rtcp_latched:
            self._rtcp_target = params.remote_rtcp or (params.remote[0], params.remote[1] + 1)
        if (
            previous is not None
            and self._outbound is not None
            and self._inbound is not None
            and (previous.payload_type, previous.telephone_event_pt)
            == (params.payload_type, params.telephone_event_pt)
        ):
            if self._inbound.source is not None and params.symmetric:
                self._target = self._inbound.source
            return
        self.stop()
        inband = params.inband_dtmf if params.inband_dtmf is not None else params.telephone_event_pt is None
        self._inbound = InboundStream(
            codec,
            telephone_event_pt=params.telephone_event_pt,
            inband_dtmf=inband,
            symmetric=params.symmetric,
            jitter=self._engine.jitter_config,
        )
        self._inbound.set_want_audio(bool(self._consumers))
        rng = random.SystemRandom()
        self._outbound = OutboundStream(
            codec,
            ssrc=rng.getrandbits(32),
            ts_offset=rng.getrandbits(32),
            first_seq=rng.getrandbits(16),
            telephone_event_pt=params.telephone_event_pt,
            idle_silence=self._engine.idle_silence,
        )
        if self._hold is HoldMode.MUSIC:
            self._outbound.set_loop(self._engine.hold_music(codec).frames)
        if self._hold is not HoldMode.SILENT and self._bridge is None:
            self._scheduler.add_sender(self._key, self._on_tick)
        self._scheduler.add_reporter(self._key, self._on_report)
        self._log.info(
            "rtp_session_started",
            remote=params.remote,
            payload_type=params.payload_type,
            telephone_event_pt=params.telephone_event_pt,
            inband_dtmf=inband,
        )

    def _streams(self) -> tuple[InboundStream, OutboundStream]:
        if self._inbound is None or self._outbound is None:
            raise MediaStateError(f"media session on port {self.local_port} is not started (call start())")
        return self._inbound, self._outbound

    def _check_open(self) -> None:
        if self._closed:
            raise MediaStateError(f"media session on port {self.local_port} is closed")

    # ------------------------------------------------------------------ hot paths

    def _on_tick(self, tick: int) -> None:
        packet = self._outbound.tick(tick)  # type: ignore[union-attr]  # senders are added once started
        if packet is not None and self._target is not None:
            self._rtp.sendto(packet, self._target)

    def _on_rtp(self, data: bytes, source: Address) -> None:
        inbound = self._inbound
        if inbound is None:
            return
        if is_rtcp(data):  # RFC 5761 rtcp-mux peers
            self._on_rtcp(data, source)
            return
        now = self._clock.now()
        received = inbound.receive(data, source, now)
        if received is None:
            return
        if received.latched is not None:
            self._latched(received.latched)
        if self._relay is not None:
            self._relay(
                RelayedPacket(
                    received.payload, received.timestamp, received.ssrc, received.marker, received.is_event
                )
            )
        if received.frames:
            self._deliver(received)
        for digit, source_kind in received.keys:
            self._emit_dtmf(DtmfReceived(digit, source_kind, now))

    def _latched(self, source: Address) -> None:
        params = self._params
        if params is not None and params.symmetric and source != self._target:
            self._log.info("rtp_remote_latched", remote=source, signalled=params.remote)
            self._target = source

    def _deliver(self, received: Received) -> None:
        for consumer in tuple(self._consumers):
            for frame in received.frames:
                try:
                    consumer(frame)
                except Exception:  # a broken subscriber must not break the call's media
                    self._log.exception("audio_consumer_failed")
                    self.remove_audio_consumer(consumer)
                    break

    # ------------------------------------------------------------------ inbound API

    def add_audio_consumer(self, consumer: AudioConsumer) -> Callable[[], None]:
        """Deliver every received 160-sample int16 frame (8 kHz) to `consumer`; returns an unsubscriber."""
        self._consumers.append(consumer)
        if self._inbound is not None:
            self._inbound.set_want_audio(True)
        return lambda: self.remove_audio_consumer(consumer)

    def remove_audio_consumer(self, consumer: AudioConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        if not self._consumers and self._inbound is not None:
            self._inbound.set_want_audio(False)

    def on_dtmf(self, listener: DtmfListener) -> Callable[[], None]:
        """Call `listener` with every key, whatever its source; returns an unsubscriber."""
        self._dtmf_listeners.append(listener)
        return lambda: self._dtmf_listeners.remove(listener) if listener in self._dtmf_listeners else None

    def dtmf_events(self) -> DtmfStream:
        """Every key from this call on, as an async iterator; it ends when the session closes.

        Subscribes at once (not at the first `anext`), so no key between the two is missed.
        """
        return DtmfStream(self)

    def signal_dtmf(self, digit: str, source: DtmfSource = DtmfSource.INFO) -> None:
        """A key learnt outside RTP (the SIP layer's INFO handler) joins the same event stream."""
        event_code(digit)
        self._emit_dtmf(DtmfReceived(digit.upper(), source, self._clock.now()))

    def _emit_dtmf(self, event: DtmfReceived) -> None:
        self._log.info("dtmf_received", digit=event.digit, source=event.source.value)
        if self._barge_in and self._play_future is not None:
            self._stop_playback(PlayOutcome.INTERRUPTED_BY_DIGIT)
        for listener in tuple(self._dtmf_listeners):
            listener(event)

    async def record(
        self, max_s: float, silence_s: float, *, silence_dbfs: float = -45.0
    ) -> NDArray[np.int16]:
        """Received audio until `silence_s` of continuous silence or `max_s` in all (8 kHz int16)."""
        self._check_open()
        frames: list[NDArray[np.int16]] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        threshold = (32768.0 * 10.0 ** (silence_dbfs / 20.0)) ** 2
        quiet_needed = max(1, math.ceil(silence_s / FRAME_S))
        max_frames = max(1, math.ceil(max_s / FRAME_S))
        quiet = 0

        def collect(frame: NDArray[np.int16]) -> None:
            nonlocal quiet
            frames.append(frame)
            quiet = quiet + 1 if float(np.mean(frame.astype(np.float64) ** 2)) < threshold else 0
            if (quiet >= quiet_needed or len(frames) >= max_frames) and not done.done():
                done.set_result(None)

        unsubscribe = self.add_audio_consumer(collect)

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self._closers.append(wake)
        try:
            async with asyncio.timeout(max_s):
                await done
        except TimeoutError:
            pass
        finally:
            unsubscribe()
            self._closers.remove(wake)
        return np.concatenate(frames)[: max_frames * 160] if frames else np.zeros(0, dtype=np.int16)

    # ------------------------------------------------------------------ outbound API

    def encode(self, audio: NDArray[np.int16] | EncodedAudio) -> EncodedAudio:
        """Audio as payloads for this session's codec (already encoded audio passes through if it fits)."""
        codec = self.codec
        if isinstance(audio, EncodedAudio):
            if audio.codec is codec:
                return audio
            raise MediaStateError(
                f"audio encoded as {audio.codec.name} cannot play on a {codec.name} session"
            )
        return EncodedAudio(codec, codec.encode_frames(audio))

    async def play(self, audio: NDArray[np.int16] | EncodedAudio, *, barge_in: bool = False) -> PlayResult:
        """Play 8 kHz int16 audio (or pre-encoded payloads); return when done, stopped or interrupted.

        A new `play` replaces the one in progress (which returns STOPPED). With `barge_in`, any key
        stops it (INTERRUPTED_BY_DIGIT). Cancelling the awaiting task stops the audio.
        """
        self._check_open()
        _, outbound = self._streams()
        if self._bridge is not None or self._hold is not None:
            state = "bridged" if self._bridge is not None else "on hold"
            raise MediaStateError(f"media session on port {self.local_port} is {state}: cannot play")
        clip = self.encode(audio)
        future: asyncio.Future[PlayResult] = asyncio.get_running_loop().create_future()

        def finished(sent: int, completed: bool) -> None:
            if self._play_future is future:
                self._play_future = None
                self._barge_in = False
            if not future.done():
                outcome = PlayOutcome.COMPLETED if completed else self._play_stop_reason
                future.set_result(PlayResult(outcome, round(sent * FRAME_S, 3)))

        self._play_stop_reason = PlayOutcome.STOPPED
        outbound.play(clip.frames, finished)
        self._play_future = future
        self._barge_in = barge_in
        try:
            return await future
        finally:
            if self._play_future is future:  # our task was cancelled: silence the prompt
                self._stop_playback(PlayOutcome.STOPPED)

    def stop(self) -> None:
        """Stop the prompt playing, if any (its `play` returns STOPPED)."""
        self._stop_playback(PlayOutcome.STOPPED)

    def _stop_playback(self, reason: PlayOutcome) -> None:
        if self._outbound is not None and self._outbound.playing:
            self._play_stop_reason = reason
            self._outbound.stop_clip()

    @property
    def playing(self) -> bool:
        return self._outbound is not None and self._outbound.playing

    def hold(self, mode: HoldMode = HoldMode.MUSIC) -> None:
        """Put the caller on hold: music on hold in a loop, or nothing sent at all."""
        self._check_open()
        _, outbound = self._streams()
        if self._bridge is not None:
            raise MediaStateError(f"media session on port {self.local_port} is bridged: unbridge before hold")
        self.stop()
        self._hold = mode
        if mode is HoldMode.MUSIC:
            outbound.set_loop(self._engine.hold_music(outbound.codec).frames)
            self._scheduler.add_sender(self._key, self._on_tick)
        else:
            self._scheduler.remove_sender(self._key)

    def unhold(self) -> None:
        self._check_open()
        _, outbound = self._streams()
        if self._hold is None:
            return
        self._hold = None
        outbound.set_loop(())
        outbound.resume()
        self._scheduler.add_sender(self._key, self._on_tick)

    @property
    def held(self) -> HoldMode | None:
        return self._hold

    async def send_dtmf(self, digit: str, *, duration_ms: int = 100) -> None:
        """Send a key: RFC 4733 events when negotiated, else the dual tone in-band. Returns when sent."""
        self._check_open()
        _, outbound = self._streams()
        event_code(digit)
        if not self._scheduler.has_sender(self._key):
            raise MediaStateError(f"media session on port {self.local_port} is not sending (held or bridged)")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def sent() -> None:
            if not future.done():
                future.set_result(None)

        if outbound.sends_events:
            outbound.send_key(TelephoneEventSender(digit, duration_ms), (), sent)
        else:
            tone = np.concatenate([dtmf_tone(digit, duration_ms / 1000.0), silence(0.06)])
            outbound.send_key(None, outbound.codec.encode_frames(tone), sent)
        self._pending_keys.append(future)
        try:
            await future
        finally:
            self._pending_keys.remove(future)

    # ------------------------------------------------------------------ bridging

    def bridge(self, other: MediaSession) -> Bridge:
        """Relay RTP between this leg and `other` (transcoding if their codecs differ) until unbridged."""
        self._check_open()
        other._check_open()
        self._streams()
        other._streams()
        for leg in (self, other):
            if leg._bridge is not None:
                leg.unbridge()
            if leg._hold is not None:
                leg.unhold()
        bridge = Bridge(self, other)
        self._log.info("media_bridged", other_port=other.local_port, transcoding=bridge.transcoding)
        return bridge

    def unbridge(self) -> None:
        if self._bridge is not None:
            self._bridge.close()

    @property
    def bridged_to(self) -> MediaSession | None:
        if self._bridge is None:
            return None
        other = self._bridge.other(self)
        assert isinstance(other, MediaSession)
        return other

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        self.stop()
        self._bridge = bridge
        self._relay = forward
        self._scheduler.remove_sender(self._key)

    def stop_relay(self) -> None:
        self._bridge = None
        self._relay = None
        if self._outbound is not None and not self._closed:
            self._outbound.end_relay()
            self._scheduler.add_sender(self._key, self._on_tick)

    def send_relayed(self, packet: RelayedPacket) -> None:
        outbound = self._outbound
        if outbound is None or self._target is None or self._closed:
            return
        data = outbound.relay(
            packet.payload,
            packet.timestamp,
            packet.ssrc,
            packet.marker,
            packet.is_event,
            self._scheduler.current_tick(),
        )
        if data is not None:
            self._rtp.sendto(data, self._target)

    # ------------------------------------------------------------------ RTCP

    def _on_report(self, now: float) -> None:
        if self._inbound is None or self._outbound is None or self._rtcp_target is None:
            return
        self._rtcp.sendto(self._build_report(now), self._rtcp_target)

    def _build_report(self, now: float, *, goodbye: bool = False) -> bytes:
        inbound, outbound = self._streams()
        block = None
        if inbound.remote_ssrc is not None and inbound.stats.received:
            block = inbound.stats.report_block(inbound.remote_ssrc, now)
        sender = None
        if outbound.packets_sent > self._packets_at_last_report:  # we sent since the last report: SR
            rtp_now = outbound.timestamp_at(self._scheduler.current_tick())
            sender = (
                ntp_timestamp(self._clock.wall().timestamp()),
                rtp_now,
                outbound.packets_sent,
                outbound.octets_sent,
            )
        self._packets_at_last_report = outbound.packets_sent
        return compound_report(outbound.ssrc, self._engine.cname, sender, block, goodbye=goodbye)

    def _on_rtcp(self, data: bytes, source: Address) -> None:
        inbound, outbound = self._inbound, self._outbound
        if inbound is None or outbound is None:
            return
        try:
            packets = parse_rtcp(data)
        except RtpParseError as exc:
            self._log.debug("rtcp_malformed", error=str(exc), source=source)
            return
        if not self._rtcp_latched and self._params is not None and self._params.symmetric:
            self._rtcp_target, self._rtcp_latched = source, True
        now = self._clock.now()
        for packet in packets:
            if isinstance(packet, SenderReport):
                inbound.stats.sender_report_received(packet.ntp_timestamp, now)
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == outbound.ssrc:
                        rtt = round_trip_s(block, ntp_timestamp(self._clock.wall().timestamp()))
                        self.rtt_s = rtt if rtt is not None else self.rtt_s
            elif isinstance(packet, Goodbye):
                self._log.info("rtcp_bye_received", ssrcs=list(packet.ssrcs))

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        """Stop everything and release the ports. Idempotent; safe from any callback."""
        if self._closed:
            return
        self._stop_playback(PlayOutcome.CLOSED)
        self.unbridge()
        self._closed = True
        self._scheduler.remove_sender(self._key)
        self._scheduler.remove_reporter(self._key)
        if self._inbound is not None and self._outbound is not None and self._rtcp_target is not None:
            self._rtcp.sendto(self._build_report(self._clock.now(), goodbye=True), self._rtcp_target)
        for future in self._pending_keys:
            if not future.done():
                future.set_exception(MediaStateError(f"media session on port {self.local_port} closed"))
        for closer in tuple(self._closers):
            closer()
        self._rtp.close()
        self._rtcp.close()
        self._engine._forget(self)
        stats = self._inbound.stats if self._inbound is not None else None
        self._log.info(
            "rtp_session_closed",
            sent=self._outbound.packets_sent if self._outbound is not None else 0,
            received=stats.received if stats is not None else 0,
            lost=stats.lost if stats is not None else 0,
            jitter_ms=round(stats.jitter / 8.0, 2) if stats is not None else 0.0,
        )

    async def __aenter__(self) -> MediaSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class DtmfStream:
    """An async iterator over a session's keys (see `MediaSession.dtmf_events`); `aclose()` to stop."""

    def __init__(self, session: MediaSession) -> None:
        self._session = session
        self._queue: asyncio.Queue[DtmfReceived | None] = asyncio.Queue()
        self._unsubscribe = session.on_dtmf(self._queue.put_nowait)
        session._closers.append(self._wake)

    def _wake(self) -> None:
        self._queue.put_nowait(None)

    def __aiter__(self) -> DtmfStream:
        return self

    async def __anext__(self) -> DtmfReceived:
        event = await self._queue.get() if not self._session.closed or not self._queue.empty() else None
        if event is None:
            await self.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._unsubscribe()
        if self._wake in self._session._closers:
            self._session._closers.remove(self._wake)
