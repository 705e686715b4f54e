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
from typing import Protocol

import structlog

from ivr.clock import Clock
from ivr.engine.legs import MediaLeg, SipMediaLeg
from ivr.errors import IvrError
from ivr.rtp import MediaEngine, MediaParams, MediaSession
from ivr.sip.calls import CallFailed, IncomingCall, OutgoingCall
from ivr.sip.sdp import SessionDescription, answer_offer, make_offer, negotiated_codec
from ivr.sip.useragent import UserAgent
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

    def __init__(self, ua: UserAgent, media: MediaEngine, prompts: PromptLibrary, clock: Clock, host: str) -> None:
        self._ua = ua
        self._media = media
        self._prompts = prompts
        self._clock = clock
        self._host = host
        self._session_seq = int.from_bytes(os.urandom(3), "big")
        self._giving_up: set[asyncio.Task[None]] = set()

    async def answer(self, incoming: IncomingCall) -> SipMediaLeg | None:
        """Ring, answer with our SDP and start the media; None when the call was refused instead (488:
        an INVITE without an offer, which would need our offer in the 200 and the answer in the ACK).
        Raises SdpError for an offer we cannot take."""
        offer = incoming.offer_sdp
        if offer is None:
            log.info("call_refused", reason="no SDP offer in the INVITE")
            incoming.reject(488)
            return None
        media = await self._media.open_session(call_id=incoming.call_id)
        try:
            self._session_seq += 1
            answer = answer_offer(offer, local_address=self._host, local_port=media.local_port,
                                  session_id=self._session_seq)
            negotiated = negotiated_codec(answer)
            remote = negotiated_codec(offer)
            incoming.ring()
            leg = incoming.answer(answer.serialize())
            media.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                    payload_type=negotiated.payload_type,
                                    telephone_event_pt=negotiated.dtmf_payload_type,
                                    peer_host=incoming.source[0]))  # MEDIA: NAT mode may latch to it
        except BaseException:
            self._media.release(media)
            raise
        return SipMediaLeg(leg, media, self._prompts, self._media.release)

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
        remote = negotiated_codec(SessionDescription.parse(leg.remote_sdp))
        media.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                payload_type=remote.payload_type, telephone_event_pt=remote.dtmf_payload_type))
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
