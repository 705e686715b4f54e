"""The real `Call`: a caller's SIP leg with RTP media, as a flow sees it.

It composes the caller's `SipMediaLeg` (prompts, keys, hang-up), the speech ears and the queue
service, and owns the listening turn (`ivr.engine.turn`), which decides barge-in and timeouts. Every
wait runs on the engine's `Clock`, so a whole call can be driven by a fake one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import (
    CallerAudio,
    CallerInput,
    CaptureSpec,
    ListenSpec,
    PlaybackResult,
    Prompt,
    QueueRequest,
    QueueResult,
    TransferContext,
    TransferResult,
)
from ivr.clock import Clock
from ivr.engine.capture import ears_transcriber, record_on_leg
from ivr.engine.context import hotline_headers, refer_to_with_context
from ivr.engine.dialer import Dialer, DialFailed
from ivr.engine.ears import Ears, EarsEvent, Heard
from ivr.engine.handoff import QueueService
from ivr.engine.legs import SipMediaLeg
from ivr.engine.turn import Turn, TurnAction
from ivr.speech.events import SpeechStarted, UtteranceEnded

log = structlog.get_logger(__name__)

BRIDGE_RING_S = 45.0
"""How long a bridged transfer rings the other hotline."""
_HANGUP = object()
_PROMPT_DONE = object()


class SipCall:
    """One answered inbound (or outbound) call, implementing `ivr.call.Call`."""

    def __init__(
        self,
        *,
        leg: SipMediaLeg,
        caller: str,
        dialed: str,
        ears: Ears | None,
        queues: QueueService | None,
        clock: Clock,
        dialer: Dialer | None = None,
    ) -> None:
        """`dialer`: places the far leg of a bridged transfer (`transfer(..., bridge=True)`)."""
        self.leg = leg
        self._caller = caller
        self._dialed = dialed
        self._ears = ears
        self._queues = queues
        self._clock = clock
        self._dialer = dialer

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
        return self.leg.ended

    def _check_alive(self) -> None:
        if self.leg.ended:
            raise self.leg.ended_error()

    # -- Call protocol ----------------------------------------------------------------------------

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        return await self.leg.play(prompts, barge_in=barge_in)

    async def listen(self, spec: ListenSpec, prompts: Sequence[Prompt] = ()) -> CallerInput:
        self._check_alive()
        inbox: asyncio.Queue[object] = asyncio.Queue()
        turn = Turn(spec, started_at=self._clock.now(), prompting=bool(prompts))
        ears = self._ears if spec.speech else None
        hearing = ears is not None and await ears.start(spec, inbox.put_nowait)
        unsubscribe_audio = self.leg.add_audio_consumer(ears.frame) if hearing and ears is not None else None
        gone = asyncio.ensure_future(self.leg.wait_ended())
        gone.add_done_callback(lambda f: None if f.cancelled() else inbox.put_nowait(_HANGUP))
        prompt_task: asyncio.Task[PlaybackResult] | None = None
        try:
            with self.leg.take_keys(inbox.put_nowait, typeahead=spec.typeahead):
                if prompts:
                    prompt_task = asyncio.create_task(self.play(prompts), name=f"prompt-{self.call_id}")
                    prompt_task.add_done_callback(lambda _: inbox.put_nowait(_PROMPT_DONE))
                while not turn.done:
                    self._check_alive()
                    try:
                        async with self._clock.timeout_at(turn.next_deadline()):
                            item = await inbox.get()
                    except TimeoutError:
                        actions = turn.handle_timer(self._clock.now())
                    else:
                        if item is _PROMPT_DONE and prompt_task is not None and not prompt_task.cancelled():
                            failure = prompt_task.exception()  # media failed, prompt missing: the flow's error route
                            if failure is not None:
                                raise failure
                        actions = self._feed_turn(turn, item)
                    for action in actions:
                        if action is TurnAction.STOP_PROMPT and prompt_task is not None:
                            prompt_task.cancel()
                        elif action is TurnAction.CANCEL_SPEECH and ears is not None:
                            await ears.stop()
                        elif action is TurnAction.END_UTTERANCE and ears is not None:
                            ears.end_utterance()
            assert turn.result is not None
            log.info("caller_input", kind=type(turn.result).__name__)
            return turn.result
        finally:
            gone.cancel()
            if prompt_task is not None and not prompt_task.done():
                prompt_task.cancel()
            elif prompt_task is not None and not prompt_task.cancelled():
                prompt_task.exception()  # the caller answered before a failing prompt mattered
            if unsubscribe_audio is not None:
                unsubscribe_audio()
            if hearing and ears is not None:
                await ears.stop()

    def _feed_turn(self, turn: Turn, item: object) -> list[TurnAction]:
        now = self._clock.now()
        if item is _HANGUP:
            raise self.leg.ended_error()
        if item is _PROMPT_DONE:
            return turn.prompt_finished(now)
        if isinstance(item, str):
            return turn.digit(item, now)
        event: EarsEvent = item  # type: ignore[assignment]
        if isinstance(event, SpeechStarted):
            return turn.speech_started(now)
        if isinstance(event, UtteranceEnded):
            return turn.speech_ended(now)
        if isinstance(event, Heard):
            return turn.recognized(event.speech, now)
        return []

    async def capture(self, spec: CaptureSpec) -> CallerAudio:
        transcribe = ears_transcriber(self._ears) if self._ears is not None else None
        return await record_on_leg(self.leg, spec, self._clock, transcribe, call_id=self.call_id)

    async def play_audio(self, audio: NDArray[np.int16], *, barge_in: bool = False) -> PlaybackResult:
        return await self.leg.play_audio(audio, barge_in=barge_in)

    async def enqueue(self, request: QueueRequest) -> QueueResult:
        self._check_alive()
        if self._queues is None:
            raise RuntimeError("this engine has no agent queues configured")
        return await self._queues.serve(self.leg, request, caller=self.caller)

    async def transfer(self, target: str, *, context: TransferContext | None = None,
                       bridge: bool = False) -> TransferResult:
        self._check_alive()
        log.info("call_transferring", target=target, bridge=bridge, context=context is not None)
        if bridge:
            return await self._bridge_to(target, hotline_headers(context) if context is not None else [])
        result = await self.leg.refer(refer_to_with_context(target, context) if context is not None else target)
        if result.accepted:
            await self.hangup()
        return result

    async def _bridge_to(self, target: str, headers: list[tuple[str, str]]) -> TransferResult:
        """Place the call to `target` ourselves and relay the caller to it until either hangs up."""
        if self._dialer is None:
            raise RuntimeError("this call has no dialer for bridged transfers")
        try:
            far = await self._dialer.dial(target, timeout_s=BRIDGE_RING_S, label=f"{self.call_id}-transfer",
                                          headers=headers)
        except DialFailed as exc:
            log.info("transfer_unanswered", target=target, status=exc.status)
            return TransferResult(accepted=False, status=exc.status)
        try:
            self.leg.bridge(far)
            ended = [asyncio.ensure_future(self.leg.wait_ended()), asyncio.ensure_future(far.wait_ended())]
            try:
                await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in ended:
                    wait.cancel()
        finally:
            self.leg.unbridge()
            await far.aclose()
        await self.hangup()
        return TransferResult(accepted=True, status=200)

    async def hangup(self) -> None:
        await self.leg.hangup()

    async def aclose(self) -> None:
        """Release what the call holds (called by the engine when the flow is done)."""
        try:
            await self.leg.aclose()
        finally:
            if self._ears is not None:
                await self._ears.aclose()
