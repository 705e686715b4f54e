"""What a session plays: the prompt in progress, the keys being sent, and why either ended.

The packets themselves come from the session's `OutboundStream` on the media clock; this part turns
them into awaitables. A prompt always ends: completed, stopped, interrupted by a key (barge-in),
closed, failed with the session's media (`MediaFailedError`), or, should the media clock stop driving
the session, `PlaybackStalled` once its deadline has passed (issue 24: a prompt whose sender was gone
never finished, and the caller never reached the queue).
"""

from __future__ import annotations

import asyncio
import copy
import weakref
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from ivr.clock import Clock
from ivr.media.g711 import G711Codec
from ivr.media.tones import dtmf_tone, silence
from ivr.rtp.dtmf import TelephoneEventSender, event_code
from ivr.rtp.errors import MediaStateError, PlaybackStalled
from ivr.rtp.events import PlayOutcome, PlayResult
from ivr.rtp.outbound import EncodedAudio, OutboundStream

FRAME_S = 0.02
STALL_GRACE_S = 2.0
"""A prompt may take this long (plus a quarter of its length) beyond its duration: a loaded machine
runs ticks late and skips some, a stalled one not at all."""


def encode_for(codec: G711Codec, audio: NDArray[np.int16] | EncodedAudio) -> EncodedAudio:
    """Audio as payloads for `codec` (already encoded audio passes through if it fits)."""
    if isinstance(audio, EncodedAudio):
        if audio.codec is codec:
            return audio
        raise MediaStateError(f"audio encoded as {audio.codec.name} cannot play on a {codec.name} session")
    return EncodedAudio(codec, codec.encode_frames(audio))


CLIPS_CACHED = 1024
"""Read-only clips whose encoding `EncodedClips` keeps (least recently played dropped first)."""


class EncodedClips:
    """Each read-only clip encoded once per codec and shared by every call that plays it.

    A prompt was G.711-encoded again for every call (~0.15 ms of a 2.4 ms call under `bench.sip_cps`,
    issue 22). Clips are known by identity, so only arrays that cannot change are kept: read-only ones
    (the prompt library serves its audio so); an entry goes when its array is collected, or when
    `max_clips` newer ones push it out. Writeable audio is encoded on every play, as before.
    """

    def __init__(self, max_clips: int = CLIPS_CACHED) -> None:
        self._max_clips = max_clips
        self._clips: OrderedDict[tuple[str, int], tuple[weakref.ref[NDArray[np.int16]], EncodedAudio]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clips)

    def encode(self, codec: G711Codec, audio: NDArray[np.int16] | EncodedAudio) -> EncodedAudio:
        """`encode_for(codec, audio)`, from the cache when `audio` is a read-only array seen before."""
        if isinstance(audio, EncodedAudio) or not _frozen(audio):
            return encode_for(codec, audio)
        key = (codec.name, id(audio))
        hit = self._clips.get(key)
        if hit is not None and hit[0]() is audio:
            self._clips.move_to_end(key)
            return hit[1]
        encoded = encode_for(codec, audio)
        clips = self._clips

        def forget(ref: weakref.ref[NDArray[np.int16]]) -> None:
            entry = clips.get(key)
            if entry is not None and entry[0] is ref:
                del clips[key]

        clips[key] = (weakref.ref(audio, forget), encoded)
        if len(clips) > self._max_clips:
            clips.popitem(last=False)
        return encoded


def _frozen(audio: NDArray[np.int16]) -> bool:
    """Whether no one can change `audio`'s samples: it and every array it views are read-only, down to
    memory it owns or to `bytes`."""
    base: object = audio
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes)


class Playback:
    def __init__(self, clock: Clock, name: str) -> None:
        self._clock = clock
        self._name = name
        """How errors name the session ("media session on port N")."""
        self._future: asyncio.Future[PlayResult] | None = None
        self._stop_reason = PlayOutcome.STOPPED
        self._barge_in = False
        self._pending_keys: list[asyncio.Future[None]] = []
        self._failure: MediaStateError | None = None

    def barge_in(self, outbound: OutboundStream | None) -> None:
        """A key was pressed: it stops the prompt playing if that prompt allows barge-in."""
        if self._barge_in and self._future is not None:
            self.stop(outbound, PlayOutcome.INTERRUPTED_BY_DIGIT)

    def start(self, outbound: OutboundStream, clip: EncodedAudio, *, barge_in: bool) -> asyncio.Future[PlayResult]:
        """Start `clip`; the future resolves when it ends (completed, stopped, interrupted, closed), fails with
        the media (`MediaFailedError`) or with `PlaybackStalled` past its deadline. Cancelling the future
        stops the audio. A future and one timer, no task: a prompt is played per call (issue 22)."""
        self._raise_if_failed()
        future: asyncio.Future[PlayResult] = asyncio.get_running_loop().create_future()

        def finished(sent: int, completed: bool) -> None:
            if self._future is future:
                self._future = None
                self._barge_in = False
            if not future.done():
                outcome = PlayOutcome.COMPLETED if completed else self._stop_reason
                future.set_result(PlayResult(outcome, round(sent * FRAME_S, 3)))

        self._stop_reason = PlayOutcome.STOPPED
        outbound.play(clip.frames, finished)
        self._future = future
        self._barge_in = barge_in
        limit_s = clip.duration_s * 1.25 + STALL_GRACE_S

        def stalled() -> None:
            if not future.done():
                future.set_exception(PlaybackStalled(
                    f"{self._name}: a {clip.duration_s:.1f} s prompt did not finish in {limit_s:.1f} s "
                    "(the media clock is not sending for this session)"
                ))

        timer = self._clock.call_at(self._clock.now() + limit_s, stalled)

        def ended(done: asyncio.Future[PlayResult]) -> None:
            timer.cancel()
            if self._future is done:  # cancelled or stalled: silence the prompt
                self.stop(outbound, PlayOutcome.STOPPED)

        future.add_done_callback(ended)
        return future

    async def play(self, outbound: OutboundStream, clip: EncodedAudio, *, barge_in: bool) -> PlayResult:
        """`start`, awaited (cancelling the awaiting task stops the audio)."""
        return await self.start(outbound, clip, barge_in=barge_in)

    def stop(self, outbound: OutboundStream | None, reason: PlayOutcome) -> None:
        if outbound is not None and outbound.playing:
            self._stop_reason = reason
            outbound.stop_clip()

    async def send_dtmf(self, outbound: OutboundStream, digit: str, duration_ms: int) -> None:
        """Queue a key on `outbound` (RFC 4733 events when negotiated, else the tone) and wait until sent."""
        self._raise_if_failed()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def sent() -> None:
            if not future.done():
                future.set_result(None)

        if outbound.sends_events:
            outbound.send_key(TelephoneEventSender(digit, duration_ms), (), sent)
        else:
            event_code(digit)
            tone = np.concatenate([dtmf_tone(digit, duration_ms / 1000.0), silence(0.06)])
            outbound.send_key(None, outbound.codec.encode_frames(tone), sent)
        self._pending_keys.append(future)
        try:
            await future
        finally:
            self._pending_keys.remove(future)

    def fail(self, outbound: OutboundStream | None, error: MediaStateError) -> None:
        """The media failed: what plays raises `error`, and so does every later `play` or key."""
        self._failure = self._failure or error
        future = self._future
        if future is not None and not future.done():
            future.set_exception(copy.copy(error))
        self.close(outbound, error)

    def close(self, outbound: OutboundStream | None, error: MediaStateError) -> None:
        """The session closes: the prompt returns CLOSED, keys not yet sent raise `error`."""
        self.stop(outbound, PlayOutcome.CLOSED)
        for key in self._pending_keys:
            if not key.done():
                key.set_exception(copy.copy(error))

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise copy.copy(self._failure)
