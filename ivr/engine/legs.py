"""A call leg as the application layer uses it: prompts, music on hold, bridging, keys and hang-up.

`MediaLeg` is the narrow seam between the engine's call logic (the flow's `SipCall`, the queue
handoff) and SIP + RTP: whoever holds a leg plays to it, holds it, bridges it to another leg, reads
its keys and learns that it ended, and never touches the SIP dialog or the media session below.
`SipMediaLeg` is the real one: a SIP `CallLeg` and its `MediaSession`.

Each leg has exactly one reader of its signalling (a watcher task: INFO keys join the RTP key
stream, BYE ends the leg) and one reader of its keys at a time (`take_keys`): keys nobody reads are
kept as type-ahead for the next reader that asks for them. So a key is never delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import CallEnded, LineFailed, PlaybackOutcome, PlaybackResult, Prompt, TransferResult
from ivr.media.bridge import Bridge
from ivr.rtp import (
    DtmfReceived,
    DtmfSource,
    HoldMode,
    MediaFailed,
    MediaFailedError,
    MediaFailure,
    MediaSession,
    PlayOutcome,
)
from ivr.rtp import PlayResult as RtpPlayResult
from ivr.sip.events import ByeReceived, ReinviteReceived
from ivr.sip.events import DtmfInfoReceived as SipDtmf
from ivr.sipua.leg import CallLeg
from ivr.sipua.refresher import SESSION_EXPIRED
from ivr.voice import PromptLibrary

log = structlog.get_logger(__name__)

KeyReader = Callable[[str], None]
"""Takes one key the caller pressed (`0`-`9`, `*`, `#`, `A`-`D`)."""

T = TypeVar("T")
BridgeWatcher = Callable[[Bridge, "MediaLeg"], None]
"""Told of each bridge a leg makes: the bridge (this leg is its side 0) and the other leg."""

_PLAY_OUTCOMES = {
    PlayOutcome.COMPLETED: PlaybackOutcome.COMPLETED,
    PlayOutcome.INTERRUPTED_BY_DIGIT: PlaybackOutcome.INTERRUPTED_BY_DIGIT,
    PlayOutcome.STOPPED: PlaybackOutcome.INTERRUPTED_BY_SPEECH,
}



def _nothing() -> None:
    pass


class KeyRouting:
    """A leg's keys: each goes to the newest reader that took them, or is kept as typeahead for the next.

    One reader at a time hears a key (the flow's listen, the queue's callback key, the callback dialogue),
    so no key has two consumers."""

    __slots__ = ("_readers", "typeahead")

    def __init__(self) -> None:
        self._readers: list[KeyReader] = []
        self.typeahead: list[str] = []

    def deliver(self, digit: str) -> None:
        if self._readers:
            self._readers[-1](digit)
        else:
            self.typeahead.append(digit)

    @contextmanager
    def take(self, reader: KeyReader, *, typeahead: bool = False) -> Iterator[None]:
        """`reader` hears the keys while the block runs; `typeahead`: it also hears those pressed before."""
        pending, self.typeahead = self.typeahead, []
        for digit in pending if typeahead else ():
            reader(digit)
        self._readers.append(reader)
        try:
            yield
        finally:
            self._readers.remove(reader)

class MediaLeg(Protocol):
    """One party of a call as the engine's call logic sees it."""

    @property
    def call_id(self) -> str: ...

    @property
    def ended(self) -> bool: ...

    async def wait_ended(self) -> None:
        """Return once the leg is over (the party hung up, or we did)."""
        ...

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        """Speak the prompts; raises CallEnded if the party hangs up meanwhile."""
        ...

    def hold(self) -> None:
        """Music on hold until `unhold`, `play` after `unhold`, or `bridge`."""
        ...

    def unhold(self) -> None:
        """Stop the music on hold (nothing if not held)."""
        ...

    def bridge(self, other: MediaLeg) -> None:
        """Relay audio and keys between this leg and `other` until `unbridge`."""
        ...

    def unbridge(self) -> None: ...

    def take_keys(self, reader: KeyReader, *, typeahead: bool = False) -> AbstractContextManager[None]:
        """Within the block, every key goes to `reader` and nowhere else. With `typeahead`, keys pressed
        while nobody read them go to `reader` first; without, they are dropped (they were pressed for
        what came before)."""
        ...

    async def hangup(self) -> None:
        """End the leg from our side (idempotent)."""
        ...

    async def aclose(self) -> None:
        """Hang up if still up and release what the leg holds (idempotent)."""
        ...


class SipMediaLeg:
    """A SIP call leg with its RTP media session: the real `MediaLeg`."""

    def __init__(
        self,
        leg: CallLeg,
        media: MediaSession,
        prompts: PromptLibrary,
        release: Callable[[MediaSession], None],
        *,
        confirm_on_ack: bool = False,
    ) -> None:
        """`confirm_on_ack`: the media session waits for the ACK to our 2xx to confirm where to send."""
        self._leg = leg
        self._media = media
        self._prompts = prompts
        self._release = release
        self._ended = asyncio.Event()
        self._end_wakers: list[Callable[[], None]] = []
        """Told when the leg ends (`_until_ended`'s waits)."""
        self._keys = KeyRouting()
        self._closed = False
        self._confirm_on_ack = confirm_on_ack
        self._unsubscribe_keys = media.on_dtmf(self._on_key)
        self._unsubscribe_failure = media.on_media_failed(self._on_media_failed)
        self._failing: asyncio.Task[None] | None = None
        self._bridge_watchers: list[BridgeWatcher] = []
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name=f"leg-{leg.call_id}")

    @property
    def call_id(self) -> str:
        return self._leg.call_id

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def has_typeahead(self) -> bool:
        return bool(self._keys.typeahead)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    # -- signalling ------------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """The one reader of the dialog's events (and of the ACK that confirms our answer)."""
        try:
            if self._confirm_on_ack:
                await self._leg.confirmed()
                self._media.confirm()
            while True:
                event = await self._leg.next_event()
                if isinstance(event, SipDtmf):
                    self._media.signal_dtmf(event.digit, DtmfSource.INFO)
                elif isinstance(event, ByeReceived):
                    break
                elif isinstance(event, ReinviteReceived):
                    log.info("reinvite_received", held=event.held)
        except CallEnded:
            pass
        finally:
            self._set_ended()

    def _on_media_failed(self, failure: MediaFailed) -> None:
        """Media that failed for good (nothing sent for seconds, no packet to latch to, socket gone) ends
        the call: nobody could hear anybody. The BYE's Reason says why."""
        if self.ended or self._failing is not None:
            return
        text = failure.detail.replace("\\", "\\\\").replace('"', '\\"')
        self._failing = asyncio.get_running_loop().create_task(
            self._hang_up(f'SIP;cause=500;text="{text}"'), name=f"media-failed-{self.call_id}"
        )

    def _on_key(self, event: DtmfReceived) -> None:
        self._keys.deliver(event.digit)

    def take_keys(self, reader: KeyReader, *, typeahead: bool = False) -> AbstractContextManager[None]:
        return self._keys.take(reader, typeahead=typeahead)

    def _check_alive(self) -> None:
        if self.ended:
            raise self.ended_error()

    def ended_error(self) -> CallEnded:
        """What a flow waiting on the ended leg is told: LineFailed when the line failed under it (the
        caller stopped refreshing the session, RFC 4028: the record says `session_expired`), else CallEnded."""
        if self._leg.end_reason == SESSION_EXPIRED:
            return LineFailed(f"call {self.call_id} ended: the session expired", SESSION_EXPIRED)
        return CallEnded(f"call {self.call_id} ended")

    async def _until_ended(self, awaitable: asyncio.Future[T]) -> T:
        """Await `awaitable`, or cancel it and raise CallEnded as soon as the leg ends."""
        # One future woken by whichever comes first, rather than a task waiting on `_ended` plus
        # `asyncio.wait` for every prompt (issue 22: a task per prompt is measurable per call).
        if not self._ended.is_set():
            woken = asyncio.get_running_loop().create_future()

            def wake(_: object = None) -> None:
                if not woken.done():
                    woken.set_result(None)

            awaitable.add_done_callback(wake)
            self._end_wakers.append(wake)
            try:
                await woken
            finally:
                awaitable.remove_done_callback(wake)
                self._end_wakers.remove(wake)
        if not awaitable.done():
            awaitable.cancel()
            raise self.ended_error()
        try:
            return awaitable.result()
        except MediaFailedError as exc:
            raise _line_failed(exc) from exc

    def _start_play(self, audio: NDArray[np.int16], barge_in: bool) -> asyncio.Future[RtpPlayResult]:
        """The session's prompt future (no task per prompt, issue 22); a media failure as `LineFailed`."""
        try:
            return self._media.start_play(audio, barge_in=barge_in)
        except MediaFailedError as exc:
            raise _line_failed(exc) from exc

    # -- media -----------------------------------------------------------------------------------------

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        self._check_alive()
        played_s = 0.0
        for prompt in prompts:
            if barge_in and self._keys.typeahead:
                return PlaybackResult(PlaybackOutcome.INTERRUPTED_BY_DIGIT, played_s)
            resolved = await self._prompts.audio_for(prompt)
            log.info("prompt_played", prompt=prompt.prompt_id, dialect=resolved.dialect_used,
                     source=resolved.source.value, duration_s=round(resolved.duration_s, 2))
            result = await self._until_ended(self._start_play(resolved.audio, barge_in))
            played_s += result.played_s
            outcome = _PLAY_OUTCOMES[result.outcome]
            if outcome is not PlaybackOutcome.COMPLETED:
                return PlaybackResult(outcome, played_s)
        return PlaybackResult(PlaybackOutcome.COMPLETED, played_s)

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult:
        """Play raw 8 kHz audio (the record beep, a recording played back); added by voice for `Call.capture`."""
        self._check_alive()
        result = await self._until_ended(self._start_play(audio, barge_in))
        return PlaybackResult(_PLAY_OUTCOMES[result.outcome], result.played_s)

    def hold(self) -> None:
        self._media.hold(HoldMode.MUSIC)

    def unhold(self) -> None:
        if self._media.held is not None:
            self._media.unhold()

    def bridge(self, other: MediaLeg) -> None:
        if not isinstance(other, SipMediaLeg):
            raise TypeError(f"cannot bridge a SIP leg to {type(other).__name__}")
        bridge = self._media.bridging.bridge(other._media)
        for watcher in list(self._bridge_watchers):
            watcher(bridge, other)

    def on_bridged(self, watcher: BridgeWatcher) -> Callable[[], None]:
        """`watcher(bridge, other)` runs each time this leg bridges (recording, supervision); returns an
        unsubscriber. The bridge is this leg's side 0."""
        self._bridge_watchers.append(watcher)
        return lambda: self._bridge_watchers.remove(watcher) if watcher in self._bridge_watchers else None

    @property
    def media(self) -> MediaSession:
        """The leg's media session (a supervisor's leg joins a bridge through it)."""
        return self._media

    def unbridge(self) -> None:
        self._media.bridging.unbridge()

    def add_audio_consumer(self, consumer: Callable[..., None]) -> Callable[[], None]:
        """Every received audio frame also goes to `consumer` (the speech ears), until the returned call."""
        return self._media.add_audio_consumer(consumer)

    # -- ending ----------------------------------------------------------------------------------------

    async def refer(self, target: str) -> TransferResult:
        self._check_alive()
        return await self._leg.refer(target)

    async def hangup(self) -> None:
        await self._hang_up()

    async def _hang_up(self, reason: str | None = None) -> None:
        if not self._leg.ended:
            await self._leg.bye(reason)
        self._set_ended()

    def _set_ended(self) -> None:
        self._ended.set()
        for wake in list(self._end_wakers):
            wake()

    async def aclose(self) -> None:
        """Hang up if still up, stop reading the leg, and release its media session (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe_keys()
        self._unsubscribe_failure()
        # The unsubscribers are closures over this leg's own methods: dropped, the leg is freed by
        # reference counting instead of waiting in a cycle for the garbage collector (issue 22).
        self._unsubscribe_keys = self._unsubscribe_failure = _nothing
        self._watcher.cancel()
        await asyncio.gather(self._watcher, *filter(None, [self._failing]), return_exceptions=True)
        try:
            await self.hangup()
        finally:
            self._release(self._media)


def _line_failed(exc: MediaFailedError) -> LineFailed:
    """The media failed under a prompt: `_on_media_failed` is already hanging up with the reason, so the
    flow must not go on to an error route whose prompts nobody could hear."""
    reason = exc.reason.value if isinstance(exc.reason, MediaFailure) else "media_failed"
    return LineFailed(str(exc), reason)


__all__ = ["BridgeWatcher", "KeyReader", "KeyRouting", "MediaLeg", "SipMediaLeg"]
