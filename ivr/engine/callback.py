"""The callback-number dialogue a queued caller goes through after pressing the callback key (issue 15).

A callback makes the hotline place a call, so the number is never taken on trust (ivr.callback_policy):

1. The number the call presented (From, or P-Asserted-Identity from a trusted trunk) is read back digit
   by digit in the caller's dialect: "press 1 if that is right, 2 for another number". One that the
   rules refuse is not read back (it may be anything a spoofer wrote); the caller is asked to key one.
2. Another number is keyed, ended by #, at most `MAX_NUMBER_DIGITS` keys, with a first-key and an
   inter-digit timeout; it is checked by the same rules and read back for confirmation in turn.
3. A number the rules refuse or today's limits exclude gets `callback_unavailable` ("we cannot call
   that number back; please stay on the line"); silence or any other key leaves things as they were.
   Either way the caller keeps their place in the queue.

The dialogue reads the keys the queue handoff collects for the caller's leg (the handoff is the leg's
only key reader while queued) and learns of a hang-up from the leg (CallEnded).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from ivr.call import CallEnded, Prompt
from ivr.callback_policy import CallbackPolicy, CallbackVerdict, Confirmation
from ivr.clock import Clock
from ivr.engine.digits import DigitCollector
from ivr.engine.legs import MediaLeg

log = structlog.get_logger(__name__)

CONFIRM_TIMEOUT_S = 8.0
"""How long after the read-back the caller has to press 1 or 2."""
FIRST_KEY_TIMEOUT_S = 10.0
"""How long after "key the number" the first key may take (people look the number up)."""
INTER_DIGIT_TIMEOUT_S = 5.0
MAX_NUMBER_DIGITS = 16
"""Longer than any number the rules could allow (mainland landlines are 12 digits with the 0)."""
MAX_READBACKS = 3
"""Numbers read back in one dialogue: a caller who keeps saying "no" goes back to the queue."""


class CallbackDialogue:
    """Agrees with a queued caller on the number to call back, within the callback rules."""

    def __init__(self, policy: CallbackPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock

    async def agree(self, leg: MediaLeg, keys: asyncio.Queue[str], dialect: str, presented: str) -> str | None:
        """The confirmed number (national form) the rules allow today; None: the caller stays queued.

        Raises CallEnded when the caller hangs up meanwhile."""
        _drain(keys)  # keys pressed with the callback key were for the queue, not an answer
        try:
            return await self._agree(leg, keys, dialect, presented)
        finally:
            _drain(keys)  # keys left over from the dialogue are no new callback request

    async def _agree(self, leg: MediaLeg, keys: asyncio.Queue[str], dialect: str, presented: str) -> str | None:
        day = self._clock.wall().date()
        number = presented
        # A presented number the rules refuse is not read back (it may be anything a spoofer wrote),
        # nor one called back enough today; today's total used up is explained at once.
        verdict = self._policy.check(presented, day)
        keyed = verdict is CallbackVerdict.NOT_ALLOWED or verdict is CallbackVerdict.NUMBER_LIMIT
        for _ in range(MAX_READBACKS):
            if keyed:
                entered = await self._enter_number(leg, keys, dialect)
                if entered is None:
                    return None
                number = entered
            verdict = self._policy.check(number, day)
            if verdict is not CallbackVerdict.ALLOWED:
                log.info("callback_refused", call_id=leg.call_id, verdict=verdict.value)
                await _say(leg, "callback_unavailable", dialect)
                return None
            answer = await self._confirm(leg, keys, dialect, number)
            if answer is Confirmation.YES:
                log.info("callback_number_confirmed", call_id=leg.call_id, number=number, keyed=keyed)
                return self._policy.normalize(number)
            if answer is Confirmation.UNCLEAR:
                log.info("callback_not_confirmed", call_id=leg.call_id)
                return None
            keyed = True
        log.info("callback_not_confirmed", call_id=leg.call_id, readbacks=MAX_READBACKS)
        return None

    async def _confirm(self, leg: MediaLeg, keys: asyncio.Queue[str], dialect: str, number: str) -> Confirmation:
        await _say(leg, "callback_confirm", dialect, {"phone": self._policy.readback(number)})
        key = await _next_key(leg, keys, self._clock, self._clock.now() + CONFIRM_TIMEOUT_S)
        return Confirmation.UNCLEAR if key is None else self._policy.confirmation(key)

    async def _enter_number(self, leg: MediaLeg, keys: asyncio.Queue[str], dialect: str) -> str | None:
        """The digits keyed after the prompt (up to #, the length bound or a pause); None when none were."""
        await _say(leg, "callback_enter_number", dialect)
        collector = DigitCollector(MAX_NUMBER_DIGITS, terminator="#", inter_digit_timeout_s=INTER_DIGIT_TIMEOUT_S)
        first_deadline = self._clock.now() + FIRST_KEY_TIMEOUT_S
        while collector.result is None:
            key = await _next_key(leg, keys, self._clock, collector.next_deadline() or first_deadline)
            if key is None:
                collector.handle_timer(self._clock.now())
                if collector.result is None:  # no key at all before the first-key deadline
                    break
            else:
                collector.key(key, self._clock.now())
        digits = collector.result.digits if collector.result is not None else ""
        if not digits:
            log.info("callback_number_not_keyed", call_id=leg.call_id)
            return None
        return digits


async def _say(leg: MediaLeg, prompt_id: str, dialect: str, variables: Mapping[str, str] | None = None) -> None:
    leg.unhold()
    await leg.play([Prompt(prompt_id, "", dialect, variables or {})])


async def _next_key(leg: MediaLeg, keys: asyncio.Queue[str], clock: Clock, deadline: float) -> str | None:
    """The caller's next key, None at `deadline`; CallEnded if the caller hangs up first."""
    key = asyncio.ensure_future(keys.get())
    gone = asyncio.ensure_future(leg.wait_ended())
    try:
        async with clock.timeout_at(deadline):
            await asyncio.wait({key, gone}, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        pass
    finally:
        key.cancel()
        gone.cancel()
    if gone.done() and not gone.cancelled():
        raise CallEnded(f"call {leg.call_id} ended during the callback dialogue")
    if key.done() and not key.cancelled():
        return key.result()
    return None


def _drain(keys: asyncio.Queue[str]) -> None:
    while not keys.empty():
        keys.get_nowait()


__all__ = ["CallbackDialogue"]
