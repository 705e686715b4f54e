"""The real `Call`: a SIP call leg with RTP media, as a flow sees it.

It composes the layers below (SIP leg, media session, prompt library, speech ears) and owns the
per-call glue: hang-up detection, INFO digits joining the RTP key stream, type-ahead keys, and the
listening turn (`ivr.engine.turn`), which decides barge-in and timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, TypeVar

import structlog

from ivr.call import (
    CallEnded,
    CallerInput,
    ListenSpec,
    PlaybackOutcome,
    PlaybackResult,
    Prompt,
    QueueRequest,
    QueueResult,
    TransferResult,
)
from ivr.clock import Clock
from ivr.engine.ears import Ears, EarsEvent, Heard
from ivr.engine.turn import Turn, TurnAction
from ivr.rtp import DtmfReceived, DtmfSource, MediaSession, PlayOutcome
from ivr.sip.events import ByeReceived, ReinviteReceived
from ivr.sip.events import DtmfReceived as SipDtmf
from ivr.sip.leg import CallLeg
from ivr.speech.events import SpeechStarted, UtteranceEnded
from ivr.voice import PromptLibrary

log = structlog.get_logger(__name__)

_PLAY_OUTCOMES = {
    PlayOutcome.COMPLETED: PlaybackOutcome.COMPLETED,
    PlayOutcome.INTERRUPTED_BY_DIGIT: PlaybackOutcome.INTERRUPTED_BY_DIGIT,
    PlayOutcome.STOPPED: PlaybackOutcome.INTERRUPTED_BY_SPEECH,
}


class QueueService(Protocol):
    """Serves a call waiting for a human (the engine's ACD handoff)."""

    async def serve(self, call: SipCall, request: QueueRequest) -> QueueResult: ...


T = TypeVar("T")
_HANGUP = object()
_PROMPT_DONE = object()


class SipCall:
    """One answered inbound (or outbound) call, implementing `ivr.call.Call`."""

    def __init__(
        self,
        *,
        leg: CallLeg,
        media: MediaSession,
        caller: str,
        dialed: str,
        prompts: PromptLibrary,
        ears: Ears | None,
        queues: QueueService | None,
        clock: Clock,
    ) -> None:
        self.leg = leg
        self.media = media
        self._caller = caller
        self._dialed = dialed
        self._prompts = prompts
        self._ears = ears
        self._queues = queues
        self._clock = clock
        self._typeahead: list[str] = []
        self._inbox: asyncio.Queue[object] | None = None
        self._hung_up = asyncio.Event()
        self._unsubscribe_dtmf = media.on_dtmf(self._on_key)
        self._watcher = asyncio.get_running_loop().create_task(self._watch_leg(), name=f"leg-{leg.call_id}")

    # -- identity ---------------------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    @property
    def caller(self) -> str:
        return self._caller

    @property
    def dialed(self) -> str:
        return self._dialed

    @property
    def ended(self) -> bool:
        return self._hung_up.is_set()

    # -- signalling events ------------------------------------------------------------------------

    async def _watch_leg(self) -> None:
        try:
            while True:
                event = await self.leg.next_event()
                if isinstance(event, SipDtmf):
                    self.media.signal_dtmf(event.digit, DtmfSource.INFO)
                elif isinstance(event, ByeReceived):
                    break
                elif isinstance(event, ReinviteReceived):
                    log.info("reinvite_received", held=event.held)
        except CallEnded:
            pass
        finally:
            self._hung_up.set()
            if self._inbox is not None:
                self._inbox.put_nowait(_HANGUP)

    def _on_key(self, event: DtmfReceived) -> None:
        if self._inbox is not None:
            self._inbox.put_nowait(event)
        else:
            self._typeahead.append(event.digit)

    def _check_alive(self) -> None:
        if self._hung_up.is_set():
            raise CallEnded(f"call {self.call_id} ended")

    async def _until_hangup(self, awaitable: asyncio.Future[T]) -> T:
        """Await `awaitable`, or raise CallEnded as soon as the caller hangs up."""
        hangup = asyncio.ensure_future(self._hung_up.wait())
        try:
            done, _ = await asyncio.wait((awaitable, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
        if awaitable not in done:
            awaitable.cancel()
            raise CallEnded(f"call {self.call_id} ended")
        return awaitable.result()

    # -- Call protocol ----------------------------------------------------------------------------

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        self._check_alive()
        played_s = 0.0
        for prompt in prompts:
            if barge_in and self._typeahead:
                return PlaybackResult(PlaybackOutcome.INTERRUPTED_BY_DIGIT, played_s)
            resolved = await self._prompts.audio_for(prompt)
            log.info("prompt_played", prompt=prompt.prompt_id, dialect=resolved.dialect_used,
                     source=resolved.source.value, duration_s=round(resolved.duration_s, 2))
            task = asyncio.ensure_future(self.media.play(resolved.audio, barge_in=barge_in))
            result = await self._until_hangup(task)
            played_s += result.played_s
            outcome = _PLAY_OUTCOMES[result.outcome]
            if outcome is not PlaybackOutcome.COMPLETED:
                return PlaybackResult(outcome, played_s)
        return PlaybackResult(PlaybackOutcome.COMPLETED, played_s)

    async def listen(self, spec: ListenSpec, prompts: Sequence[Prompt] = ()) -> CallerInput:
        self._check_alive()
        inbox: asyncio.Queue[object] = asyncio.Queue()
        turn = Turn(spec, started_at=self._clock.now(), prompting=bool(prompts))
        hearing = False
        if spec.speech and self._ears is not None:
            hearing = await self._ears.start(spec, inbox.put_nowait)
        unsubscribe_audio = self.media.add_audio_consumer(self._ears.frame) if hearing and self._ears else None
        typeahead, self._typeahead = self._typeahead, []
        self._inbox = inbox
        for digit in typeahead:
            inbox.put_nowait(DtmfReceived(digit, DtmfSource.RFC4733, self._clock.now()))
        prompt_task: asyncio.Task[PlaybackResult] | None = None
        if prompts:
            prompt_task = asyncio.create_task(self.play(prompts), name=f"prompt-{self.call_id}")
            prompt_task.add_done_callback(lambda _: inbox.put_nowait(_PROMPT_DONE))
        try:
            while not turn.done:
                if self._hung_up.is_set():
                    raise CallEnded(f"call {self.call_id} ended")
                deadline = turn.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self._clock.now())
                try:
                    async with asyncio.timeout(timeout):
                        item = await inbox.get()
                except TimeoutError:
                    actions = turn.handle_timer(self._clock.now())
                else:
                    actions = self._feed_turn(turn, item)
                for action in actions:
                    if action is TurnAction.STOP_PROMPT and prompt_task is not None:
                        prompt_task.cancel()
                    elif action is TurnAction.CANCEL_SPEECH and self._ears is not None:
                        await self._ears.stop()
                    elif action is TurnAction.END_UTTERANCE and self._ears is not None:
                        self._ears.end_utterance()
            assert turn.result is not None
            log.info("caller_input", kind=type(turn.result).__name__)
            return turn.result
        finally:
            self._inbox = None
            if prompt_task is not None and not prompt_task.done():
                prompt_task.cancel()
            if unsubscribe_audio is not None:
                unsubscribe_audio()
            if hearing and self._ears is not None:
                await self._ears.stop()

    def _feed_turn(self, turn: Turn, item: object) -> list[TurnAction]:
        now = self._clock.now()
        if item is _HANGUP:
            raise CallEnded(f"call {self.call_id} ended")
        if item is _PROMPT_DONE:
            return turn.prompt_finished(now)
        if isinstance(item, DtmfReceived):
            return turn.digit(item.digit, now)
        event: EarsEvent = item  # type: ignore[assignment]
        if isinstance(event, SpeechStarted):
            return turn.speech_started(now)
        if isinstance(event, UtteranceEnded):
            return turn.speech_ended(now)
        if isinstance(event, Heard):
            return turn.recognized(event.speech, now)
        return []

    async def enqueue(self, request: QueueRequest) -> QueueResult:
        self._check_alive()
        if self._queues is None:
            raise RuntimeError("this engine has no agent queues configured")
        self._typeahead.clear()
        try:
            return await self._queues.serve(self, request)
        finally:
            # Keys pressed while holding or talking to the agent were for them, not type-ahead for
            # the flow's next prompt (the survey would take an extension number as a score).
            self._typeahead.clear()

    async def transfer(self, target: str) -> TransferResult:
        self._check_alive()
        log.info("call_transferring", target=target)
        result = await self.leg.refer(target)
        if result.accepted:
            await self.hangup()
        return result

    async def hangup(self) -> None:
        if not self.leg.ended:
            await self.leg.bye()
        self._hung_up.set()

    async def aclose(self) -> None:
        """Release what the call holds (called by the engine when the flow is done)."""
        self._unsubscribe_dtmf()
        self._watcher.cancel()
        await asyncio.gather(self._watcher, return_exceptions=True)
        await self.hangup()
        if self._ears is not None:
            await self._ears.aclose()
