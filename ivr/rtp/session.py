"""One call leg's media, as the call layer sees it: start, play, hear, keys, hold, bridge, close.

`MediaEngine.open_session()` binds the ports (the local port goes into the SDP), `start(MediaParams)`
begins media once SDP is negotiated (again on a re-INVITE), `confirm()` says the ACK came, and
`close()` (or `async with`) ends it. The session composes small parts, each one concept:
`InboundStream` (each datagram: source gate, counting, jitter buffer, decoding, keys),
`OutboundStream` (each tick's packet), `SendPath` (where packets go, confirmation, send errors),
`Playback` (prompts and keys sent, as awaitables), `Listeners` (who hears audio and keys),
`RtcpChannel` (reports), `Bridging` over a `RelayLeg` (bridging, public as `session.bridging`).
Sending runs on the engine's one media clock (`MediaScheduler`), receiving on the sockets of a
`DatagramNetwork`; neither is read here directly, so a `FakeClock` and `ivr.testing.rtpprobe.MemoryNetwork`
run a whole call without real time or sockets.

Media that cannot go on (no packet could be sent for `MediaEngine.send_failure_s`, an unreachable
offer and no packet to latch to, the socket gone) is reported once as `MediaFailed` (`failure`,
`on_media_failed`, `wait_failed`); the session keeps running, what plays raises `MediaFailedError`,
and the call layer ends the call with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.media.bridge import RelayedPacket
from ivr.media.g711 import G711Codec, codec_for_payload_type
from ivr.rtp.address import Address
from ivr.rtp.bridging import Bridging
from ivr.rtp.dtmf import event_code
from ivr.rtp.errors import MediaFailedError, MediaStateError
from ivr.rtp.events import DtmfReceived, DtmfSource, HoldMode, MediaFailed, MediaFailure, PlayOutcome, PlayResult
from ivr.rtp.failure import FailureListener, FailureSignal
from ivr.rtp.gate import SourceGate
from ivr.rtp.health import SendHealth
from ivr.rtp.inbound import InboundStream
from ivr.rtp.listeners import AudioConsumer, DtmfListener, DtmfStream, Listeners
from ivr.rtp.net import DatagramPort
from ivr.rtp.outbound import EncodedAudio, OutboundStream
from ivr.rtp.packet import is_rtcp
from ivr.rtp.params import MediaParams
from ivr.rtp.playback import Playback
from ivr.rtp.relay import RelayLeg
from ivr.rtp.reports import RtcpChannel
from ivr.rtp.scheduler import SenderSlot
from ivr.rtp.sending import SendPath
from ivr.rtp.srtp import SecuredPort

if TYPE_CHECKING:
    from ivr.rtp.engine import MediaEngine

log = structlog.get_logger(__name__)

__all__ = ["AudioConsumer", "DtmfListener", "DtmfStream", "MediaParams", "MediaSession"]

class MediaSession:
    """The media of one call leg. Build with `MediaEngine.open_session()`."""

    def __init__(
        self, engine: MediaEngine, *, local: Address, rtp: DatagramPort, rtcp: DatagramPort, call_id: str | None,
        stale: Address | None = None,
    ) -> None:
        """`stale`: where the previous call on these sockets sent from (see `SourceGate.stale`)."""
        self._engine = engine
        self._scheduler = engine.scheduler
        self._clock = engine.clock
        self.local = local
        self.local_port = local[1]
        self.call_id = call_id
        self._log = log.bind(call_id=call_id, local_port=local[1])
        self._params: MediaParams | None = None
        self._stale = stale
        self.inbound: InboundStream | None = None
        self.outbound: OutboundStream | None = None
        self.held: HoldMode | None = None
        self.closed = False
        # SRTP sits between the session and its sockets: plain until `start` brings keys (ivr.rtp.srtp).
        self._sockets = (rtp, rtcp)
        """The bare sockets: handed back to the engine on close, for another session once drained."""
        self._secured = (SecuredPort(rtp, engine.counters), SecuredPort(rtcp, engine.counters))
        rtp, rtcp = self._secured
        self._failures = FailureSignal()
        self.failure: MediaFailed | None = None
        """Set once the media failed for good (see `wait_failed`)."""
        self._path = SendPath(
            rtp, local[0], self._clock, engine.counters, SendHealth(engine.send_failure_s), self._fail, self._log
        )
        self._reports = RtcpChannel(
            rtcp, local[0], self._clock, engine.cname, engine.counters, self._log,
            streams=lambda: (self.inbound, self.outbound) if self.inbound and self.outbound else None,
            may_send=lambda: self._path.confirmed,
            tick=self._scheduler.current_tick,
        )
        self._playback = Playback(self._clock, f"media session on port {self.local_port}")
        self._listeners = Listeners(self._clock, self._log, lambda: self.inbound)
        self._listeners.on_dtmf(lambda _: self._playback.barge_in(self.outbound))  # first: stop, then tell
        self._slot = SenderSlot(self._scheduler, self._on_tick)
        self._relay = RelayLeg(self, self._path.send, self._scheduler.current_tick, self._slot)
        self.bridging = Bridging(self._relay, self._log)
        """Bridging this leg to another (`bridge`, `unbridge`, `bridged_to`; see `ivr.rtp.bridging`)."""

        def socket_lost() -> None:
            self._fail(MediaFailure.SOCKET_CLOSED, f"the media socket on port {self.local_port} was closed")

        rtp.attach(self._on_rtp, self._path.error, socket_lost)
        rtcp.attach(self._reports.on_datagram, self._reports.error, socket_lost)

    # ------------------------------------------------------------------ set-up

    @property
    def codec(self) -> G711Codec:
        return self._streams()[1].codec

    @property
    def remote(self) -> Address | None:
        """Where we send RTP: the latched source, or the SDP address until a packet arrives."""
        return self._path.target

    @property
    def rtt_s(self) -> float | None:
        """Round-trip time from the last RTCP receiver report about our stream."""
        return self._reports.rtt_s

    def start(self, params: MediaParams) -> None:
        """Begin media with the negotiated parameters (again on a re-INVITE that changes them)."""
        self._check_open()
        codec = codec_for_payload_type(params.payload_type)
        previous, self._params = self._params, params
        for port in self._secured:
            port.secure(params.srtp)
        now = self._clock.now()
        peer = (params.remote, params.symmetric, params.peer_host)
        new_peer = previous is None or peer != (previous.remote, previous.symmetric, previous.peer_host)
        gate = self.inbound.gate if self.inbound is not None and not new_peer else None
        gate = gate or SourceGate.opened(
            params.remote, now, symmetric=params.symmetric, peer_host=params.peer_host, stale=self._stale
        )
        self._reports.aim(params, now, new_peer=new_peer)
        if (
            previous is not None
            and self.inbound is not None
            and (previous.payload_type, previous.telephone_event_pt)
            == (params.payload_type, params.telephone_event_pt)
        ):
            self.inbound.gate = gate
            self._path.aim(params, gate)
            return
        self.stop()
        inband = params.inband_dtmf if params.inband_dtmf is not None else params.telephone_event_pt is None
        self.inbound = InboundStream(
            codec,
            telephone_event_pt=params.telephone_event_pt,
            inband_dtmf=inband,
            gate=gate,
            jitter=self._engine.jitter_config,
            counters=self._engine.counters,
        )
        self.inbound.set_want_audio(bool(self._listeners.consumers))
        seed = int.from_bytes(os.urandom(10), "big")  # one read for SSRC, timestamp and sequence (RFC 3550 5.1)
        self.outbound = OutboundStream(
            codec,
            ssrc=seed & 0xFFFFFFFF,
            ts_offset=(seed >> 32) & 0xFFFFFFFF,
            first_seq=seed >> 64,
            telephone_event_pt=params.telephone_event_pt,
            idle_silence=self._engine.idle_silence,
            keepalive_ticks=self._engine.keepalive_ticks,
        )
        if self.held is HoldMode.MUSIC:
            self.outbound.set_loop(self._engine.hold_music(codec).frames)
        if self.held is not HoldMode.SILENT and not self.bridging.active:
            self._slot.take()
        self._scheduler.add_reporter(self._slot, self._reports.on_report)
        target = self._path.aim(params, gate)
        self._log.info(
            "rtp_session_started",
            remote=params.remote,
            target=target,
            payload_type=params.payload_type,
            telephone_event_pt=params.telephone_event_pt,
            inband_dtmf=inband,
            symmetric=params.symmetric,
            srtp=params.srtp.suite if params.srtp is not None else None,
        )

    def confirm(self) -> None:
        """The peer's address is confirmed (the ACK of our 2xx came): RTP may be sent from now on."""
        self._path.confirm()

    def _streams(self) -> tuple[InboundStream, OutboundStream]:
        if self.inbound is None or self.outbound is None:
            raise MediaStateError(f"media session on port {self.local_port} is not started (call start())")
        return self.inbound, self.outbound

    def _check_open(self) -> None:
        if self.closed:
            raise MediaStateError(f"media session on port {self.local_port} is closed")

    # ------------------------------------------------------------------ hot paths

    def _on_tick(self, tick: int) -> None:
        packet = self.outbound.tick(tick)  # type: ignore[union-attr]  # senders are added once started
        if packet is not None:
            self._path.send(packet)
        elif self._path.send_to is None:  # an idle tick still checks an unreachable offer's latch window
            self._path.check_waiting()

    def _on_rtp(self, data: bytes, source: Address) -> None:
        inbound = self.inbound
        if inbound is None:
            return
        if is_rtcp(data):  # RFC 5761 rtcp-mux peers
            self._reports.on_muxed(data, source, inbound.gate)
            return
        now = self._clock.now()
        received = inbound.receive(data, source, now)
        if received is None:
            return
        if received.latched is not None:  # the caller's first packet: it confirms the peer, shows where it is
            self._retarget(received.latched, now)
        forward = self._relay.forward
        if forward is not None:
            forward(
                RelayedPacket(received.payload, received.timestamp, received.ssrc, received.marker, received.is_event)
            )
        if received.frames:
            self._listeners.deliver(received.frames)
        for digit, source_kind in received.keys:
            self._listeners.emit_dtmf(DtmfReceived(digit, source_kind, now))

    def _retarget(self, source: Address, now: float) -> None:
        params, inbound = self._params, self.inbound
        assert params is not None and inbound is not None
        before = self._path.target
        target = self._path.aim(params, inbound.gate)
        if params.symmetric:
            self._reports.follow(source, now)
        if target != before:
            self._log.info("rtp_remote_latched", remote=target, signalled=params.remote)

    # ------------------------------------------------------------------ failure

    def _fail(self, reason: MediaFailure, detail: str) -> None:
        if self.closed or self.failure is not None:
            return
        self._engine.counters.media_failures += 1
        self._log.warning("media_failed", reason=reason.value, detail=detail)
        error = MediaFailedError(f"media session on port {self.local_port}: {detail}", reason)
        self._playback.fail(self.outbound, error)
        self.failure = MediaFailed(reason, detail, self._clock.now())
        self._failures.fail(self.failure)

    def on_media_failed(self, listener: FailureListener) -> Callable[[], None]:
        """Call `listener` (once) when the media fails; returns an unsubscriber."""
        return self._failures.on_failed(listener)

    async def wait_failed(self) -> MediaFailed:
        """Wait until the media fails (forever if it never does; `MediaStateError` if the session closes)."""
        return await self._failures.wait()

    # ------------------------------------------------------------------ hearing

    def add_audio_consumer(self, consumer: AudioConsumer) -> Callable[[], None]:
        """Deliver every received 160-sample int16 frame (8 kHz) to `consumer`; returns an unsubscriber."""
        return self._listeners.add_audio_consumer(consumer)

    def on_dtmf(self, listener: DtmfListener) -> Callable[[], None]:
        """Call `listener` with every key, whatever its source; returns an unsubscriber."""
        return self._listeners.on_dtmf(listener)

    def dtmf_events(self) -> DtmfStream:
        """Every key from this call on, as an async iterator; it ends when the session closes."""
        return DtmfStream(self._listeners)

    def signal_dtmf(self, digit: str, source: DtmfSource = DtmfSource.INFO) -> None:
        """A key learnt outside RTP (the SIP layer's INFO handler) joins the same event stream."""
        event_code(digit)
        self._listeners.emit_dtmf(DtmfReceived(digit.upper(), source, self._clock.now()))

    async def record(self, max_s: float, silence_s: float, *, silence_dbfs: float = -45.0) -> NDArray[np.int16]:
        """Received audio until `silence_s` of continuous silence or `max_s` in all (8 kHz int16)."""
        self._check_open()
        return await self._listeners.record(max_s, silence_s, silence_dbfs)

    # ------------------------------------------------------------------ sending

    async def play(self, audio: NDArray[np.int16] | EncodedAudio, *, barge_in: bool = False) -> PlayResult:
        """Play 8 kHz int16 audio (or pre-encoded payloads); return when done, stopped or interrupted.

        A new `play` replaces the one in progress (which returns STOPPED). With `barge_in`, any key
        stops it (INTERRUPTED_BY_DIGIT). Cancelling the awaiting task stops the audio. Raises
        `MediaFailedError` when the media failed, `PlaybackStalled` when it cannot progress.
        """
        return await self.start_play(audio, barge_in=barge_in)

    def start_play(self, audio: NDArray[np.int16] | EncodedAudio, *, barge_in: bool = False
                   ) -> asyncio.Future[PlayResult]:
        """`play` without a task: a future that resolves as `play` returns; cancelling it stops the audio."""
        self._check_open()
        _, outbound = self._streams()
        if self.bridging.active or self.held is not None:
            state = "bridged" if self.bridging.active else "on hold"
            raise MediaStateError(f"media session on port {self.local_port} is {state}: cannot play")
        return self._playback.start(outbound, self._engine.clips.encode(outbound.codec, audio), barge_in=barge_in)

    def stop(self) -> None:
        """Stop the prompt playing, if any (its `play` returns STOPPED)."""
        self._playback.stop(self.outbound, PlayOutcome.STOPPED)

    @property
    def playing(self) -> bool:
        return self.outbound is not None and self.outbound.playing

    async def send_dtmf(self, digit: str, *, duration_ms: int = 100) -> None:
        """Send a key: RFC 4733 events when negotiated, else the dual tone in-band. Returns when sent."""
        self._check_open()
        _, outbound = self._streams()
        event_code(digit)
        if not self._slot.taken:
            raise MediaStateError(f"media session on port {self.local_port} is not sending (held or bridged)")
        await self._playback.send_dtmf(outbound, digit, duration_ms)

    def hold(self, mode: HoldMode = HoldMode.MUSIC) -> None:
        """Put the caller on hold: music on hold in a loop, or nothing sent at all."""
        self._check_open()
        _, outbound = self._streams()
        if self.bridging.active:
            raise MediaStateError(f"media session on port {self.local_port} is bridged: unbridge before hold")
        self.stop()
        self.held = mode
        if mode is HoldMode.MUSIC:
            outbound.set_loop(self._engine.hold_music(outbound.codec).frames)
            self._slot.take()
        else:
            self._slot.leave()

    def unhold(self) -> None:
        self._check_open()
        _, outbound = self._streams()
        if self.held is None:
            return
        self.held = None
        outbound.set_loop(())
        outbound.resume()
        self._slot.take()

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        """Stop everything and release the ports. Idempotent; safe from any callback."""
        if self.closed:
            return
        closed = MediaStateError(f"media session on port {self.local_port} closed")  # for whoever still waits
        self._playback.close(self.outbound, closed)
        self.bridging.unbridge()
        self.closed = True
        # Each part lets go of its callbacks into this session as it closes (the slot, the send path, the
        # reports, the listeners, the ports), so a closed session and its parts are freed by reference
        # counting: ~130 objects a call no longer wait for the garbage collector (issue 22).
        self._slot.release()
        self._path.release()
        self._scheduler.remove_reporter(self._slot)
        self._reports.goodbye()
        self._listeners.close()
        for secured in self._secured:
            secured.release()
        self._failures.close(closed)
        # The sockets go back to the engine, which lets them drain and gives them to a later session (they
        # then drop everything that arrives); after a media failure they are closed for good.
        if self.failure is None:
            self._engine._forget(self, self._sockets)
        else:
            for port in self._sockets:
                port.close()
            self._engine._forget(self, None)
        if not self._log.is_enabled_for(logging.INFO):  # nobody reads the summary: skip working out its figures
            return
        stats = self.inbound.stats if self.inbound is not None else None
        self._log.info(
            "rtp_session_closed",
            sent=self.outbound.packets_sent if self.outbound is not None else 0,
            received=stats.received if stats is not None else 0,
            lost=stats.lost if stats is not None else 0,
            duplicates=stats.duplicates if stats is not None else 0,
            jitter_ms=round(stats.jitter / 8.0, 2) if stats is not None else 0.0,
            send_errors=self._path.health.errors,
            failure=self.failure.reason.value if self.failure is not None else None,
        )

    async def __aenter__(self) -> MediaSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
