"""Legs from SIP: answering a caller's INVITE and calling out (agents, callbacks), each with its media.

The one place where the engine's call logic meets the SIP user agent and the media engine: SDP is
answered or offered here, the media session opened and started with what was negotiated, and what
comes out is a `SipMediaLeg`. Giving up on a call we placed sends its CANCEL at once and finishes in
the background (the 487, or a 200 that crossed the CANCEL and is hung up), so whoever gave up is not
held until the far end answers the CANCEL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from ivr.call import CallEnded
from ivr.clock import Clock
from ivr.engine.legs import MediaLeg, SipMediaLeg
from ivr.errors import IvrError
from ivr.rtp import MediaEngine, MediaParams, MediaSession, SrtpKeys, assess_offer
from ivr.sip.errors import SdpError
from ivr.sip.headers import WARNING
from ivr.sip.sdes import SrtpPolicy, answer_sdes
from ivr.sip.sdp import SessionDescription, answer_offer, make_offer, negotiated_codec
from ivr.sipua.calls import CallFailed, IncomingCall, OutgoingCall
from ivr.sipua.useragent import UserAgent
from ivr.voice import PromptLibrary

log = structlog.get_logger(__name__)

FROM_USER = "95519"
"""The hotline's number, shown to the agents and callers we call."""


class DialFailed(IvrError):
    """A call we placed was not answered."""

    def __init__(self, status: int, *, timed_out: bool) -> None:
        super().__init__(f"call not answered: {'no answer in time' if timed_out else status}")
        self.status = status
        self.timed_out = timed_out
        """True when we gave up ringing (our timeout), False when the far end refused (a final status)."""


class Dialer(Protocol):
    """Places calls for the queue handoff (agents, callbacks)."""

    async def dial(self, uri: str, *, timeout_s: float, label: str,
                   headers: Iterable[tuple[str, str]] = ()) -> MediaLeg:
        """The answered leg; raises DialFailed. Cancelling the awaiting task CANCELs the INVITE at once."""
        ...


class SipLegs:
    """Answers incoming calls and dials outgoing ones, as `SipMediaLeg`s (the engine's `Dialer`)."""

    def __init__(
        self, ua: UserAgent, media: MediaEngine, prompts: PromptLibrary, clock: Clock, host: str,
        *, symmetric: bool = True, srtp: SrtpPolicy = SrtpPolicy.OFF,
    ) -> None:
        """`symmetric`: callers' media in NAT mode (latch to where their RTP comes from) rather than
        strictly to the address their SDP names (then an offer we cannot reach is refused with 488)."""
        self._ua = ua
        self._media = media
        self._prompts = prompts
        self._clock = clock
        self._host = host
        self._symmetric = symmetric
        self._srtp = srtp
        """SRTP (SDES) for calls we answer: off, optional or required (ivr.sip.sdes)."""
        self._session_seq = int.from_bytes(os.urandom(3), "big")
        self._giving_up: set[asyncio.Task[None]] = set()

    async def answer(self, incoming: IncomingCall) -> SipMediaLeg | None:
        """Ring, answer with our SDP and start the media; None when the call was refused or ended before
        it was set up. Raises SdpError for an offer we cannot take."""
        offer = incoming.offer_sdp
        if offer is None:
            return await self._answer_late_offer(incoming)
        remote = negotiated_codec(offer)
        refusal = assess_offer((remote.remote_address, remote.remote_port), self._host,
                               symmetric=self._symmetric).refusal
        if refusal is not None:  # strict media mode, and an address we cannot send to (RFC 3261 20.43)
            log.info("call_refused", reason=refusal.text)
            incoming.reject(refusal.status, headers=[(WARNING, refusal.warning(self._host))])
            return None
        media = await self._media.open_session(call_id=incoming.call_id)
        try:
            answer = answer_offer(offer, local_address=self._host, local_port=media.local_port,
                                  session_id=self._next_session())
            sdes = answer_sdes(offer, answer, self._srtp)  # RTP/SAVP: our a=crypto; a refusal is a 488
            negotiated = negotiated_codec(answer)
            # Answered at once: no 180 (it would reach the caller with the 200 and tell it nothing), and the
            # transaction's 100 Trying only goes out if we take 200 ms (RFC 3261 17.2.1): one datagram a call.
            leg = incoming.answer(answer.serialize())
            media.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                    payload_type=negotiated.payload_type,
                                    telephone_event_pt=negotiated.dtmf_payload_type,
                                    symmetric=self._symmetric,
                                    peer_host=incoming.source[0],  # NAT mode may latch to the INVITE's source
                                    # Our 2xx may be spoofed: send once the ACK (or the caller's RTP) confirms it.
                                    confirmed=False,
                                    srtp=SrtpKeys(sdes.suite, sdes.local_key, sdes.remote_key) if sdes else None))
        except BaseException:
            self._media.release(media)
            raise
        return SipMediaLeg(leg, media, self._prompts, self._media.release, confirm_on_ack=True)

    async def _answer_late_offer(self, incoming: IncomingCall) -> SipMediaLeg | None:
        """An INVITE without SDP: our offer goes in the 200 and the caller's answer comes in the ACK
        (RFC 3261 13.2.1, 13.3.1.4); the media starts once the ACK has brought it."""
        if self._srtp is SrtpPolicy.REQUIRED:  # our offer would be plain RTP (no SDES offer of ours yet)
            log.info("call_refused", reason="no SDP offer and SRTP is required")
            incoming.reject(488)
            return None
        media = await self._media.open_session(call_id=incoming.call_id)
        try:
            offer = make_offer(local_address=self._host, local_port=media.local_port, session_id=self._next_session())
            leg = incoming.answer(offer.serialize())  # at once, no 180 (as above)
            try:
                await leg.confirmed()
                self._start(media, leg.remote_sdp, symmetric=self._symmetric, peer_host=incoming.source[0])
            except CallEnded:
                log.info("call_ended_before_ack", call_id=incoming.call_id)
                self._media.release(media)
                return None
            except SdpError as exc:
                log.info("call_refused", reason=f"no usable SDP answer in the ACK: {exc}")
                self._media.release(media)
                await leg.bye()
                return None
        except BaseException:
            self._media.release(media)
            raise
        return SipMediaLeg(leg, media, self._prompts, self._media.release)

    def _next_session(self) -> int:
        self._session_seq += 1
        return self._session_seq

    @staticmethod
    def _start(media: MediaSession, remote_sdp: bytes, **params: Any) -> None:
        """Start `media` toward the first codec both sides have, as the remote SDP names it."""
        remote = negotiated_codec(SessionDescription.parse(remote_sdp))
        media.start(MediaParams(remote=(remote.remote_address, remote.remote_port), payload_type=remote.payload_type,
                                telephone_event_pt=remote.dtmf_payload_type, **params))

    async def dial(self, uri: str, *, timeout_s: float, label: str,
                   headers: Iterable[tuple[str, str]] = ()) -> SipMediaLeg:
        media = await self._media.open_session(call_id=label)
        sdp = make_offer(local_address=self._host, local_port=media.local_port, session_id=secrets.randbelow(2**31))
        outgoing = self._ua.invite(uri, sdp.serialize(), headers=list(headers), from_user=FROM_USER)
        try:
            async with self._clock.timeout(timeout_s):
                leg = await outgoing.answered()
        except TimeoutError:
            self._give_up(outgoing, media)
            raise DialFailed(408, timed_out=True) from None
        except CallFailed as exc:
            self._media.release(media)
            raise DialFailed(exc.status, timed_out=False) from None
        except asyncio.CancelledError:
            self._give_up(outgoing, media)
            raise
        self._start(media, leg.remote_sdp)
        return SipMediaLeg(leg, media, self._prompts, self._media.release)

    def _give_up(self, outgoing: OutgoingCall, media: MediaSession) -> None:
        """CANCEL now (or at the first provisional response), release the media once the INVITE is over."""

        async def cancel() -> None:
            try:
                await outgoing.cancel()
            except (IvrError, OSError) as exc:
                log.info("cancel_failed", call_id=outgoing.call_id, error=str(exc))
            finally:
                self._media.release(media)

        task = asyncio.get_running_loop().create_task(cancel(), name=f"cancel-{outgoing.call_id}")
        self._giving_up.add(task)
        task.add_done_callback(self._giving_up.discard)

    async def aclose(self) -> None:
        """Stop waiting for the far ends of calls given up (their media is released)."""
        for task in list(self._giving_up):
            task.cancel()
        await asyncio.gather(*self._giving_up, return_exceptions=True)


__all__ = ["DialFailed", "Dialer", "SipLegs"]
