"""One listening turn of a live call, pure: prompt, barge-in, keys and speech in; one answer out.

This is VoiceXML's field semantics as a state machine. The call adapter feeds it what the media
and speech layers report (`prompt_finished`, `digit`, `speech_started`, `speech_ended`,
`recognized`) with the time, arms one timer at `next_deadline()`, and acts on the returned
`TurnAction`s: stop the prompt, or finish with a `CallerInput`.

Timers: the no-input timeout starts when the prompt ends (a caller can't be expected to answer a
question still being asked); keys use the inter-digit timeout once the first key is in; an utterance
is capped at `max_utterance_s` from its start, and a recognizer that gives no final result within
`DECODE_TIMEOUT_S` after that counts as no input rather than holding the caller forever.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.call import CallerInput, DigitsInput, ListenSpec, NoInput, SpeechInput
from ivr.engine.digits import DigitCollector


class TurnAction(enum.Enum):
    STOP_PROMPT = "stop_prompt"
    """Barge-in: the caller spoke or pressed a key while the prompt played."""
    CANCEL_SPEECH = "cancel_speech"
    """Keys won: drop whatever the recognizer is decoding."""
    END_UTTERANCE = "end_utterance"
    """The utterance ran past its maximum length: make the recognizer give its final result now."""
    FINISH = "finish"
    """`Turn.result` holds the caller's input."""


DECODE_TIMEOUT_S = 8.0


class _Phase(enum.Enum):
    PROMPTING = "prompting"
    WAITING = "waiting"
    SPEAKING = "speaking"
    DECODING = "decoding"
    DONE = "done"


@dataclass(slots=True)
class Turn:
    spec: ListenSpec
    started_at: float
    prompting: bool = True
    result: CallerInput | None = None
    _phase: _Phase = _Phase.PROMPTING
    _waiting_since: float | None = None
    _speech_started_at: float | None = None
    _speech_ended_at: float | None = None
    _collector: DigitCollector | None = None

    def __post_init__(self) -> None:
        if self.spec.max_digits > 0:
            self._collector = DigitCollector(
                max_digits=self.spec.max_digits,
                min_digits=self.spec.min_digits,
                terminator=self.spec.terminator,
                inter_digit_timeout_s=self.spec.inter_digit_timeout_s,
            )
        if not self.prompting:
            self._phase = _Phase.WAITING
            self._waiting_since = self.started_at

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    def _finish(self, result: CallerInput) -> list[TurnAction]:
        self.result = result
        self._phase = _Phase.DONE
        return [TurnAction.FINISH]

    def prompt_finished(self, now: float) -> list[TurnAction]:
        if self._phase is _Phase.PROMPTING:
            self._phase = _Phase.WAITING
            self._waiting_since = now
        return []

    def digit(self, digit: str, now: float) -> list[TurnAction]:
        if self.done or self._collector is None:
            return []
        actions: list[TurnAction] = []
        if self._phase is _Phase.PROMPTING:
            if not self.spec.barge_in:
                return []
            actions.append(TurnAction.STOP_PROMPT)
        if self._phase in (_Phase.SPEAKING, _Phase.DECODING):
            actions.append(TurnAction.CANCEL_SPEECH)
        self._phase = _Phase.WAITING
        finished = self._collector.key(digit, now)
        if finished is not None:
            actions += self._finish(finished)
        return actions

    def speech_started(self, now: float) -> list[TurnAction]:
        if self.done or not self.spec.speech or (self._collector and self._collector.started):
            return []
        if self._phase is _Phase.PROMPTING and not self.spec.barge_in:
            return []
        actions = [TurnAction.STOP_PROMPT] if self._phase is _Phase.PROMPTING else []
        self._phase = _Phase.SPEAKING
        self._speech_started_at = now
        return actions

    def speech_ended(self, now: float) -> list[TurnAction]:
        if self._phase is _Phase.SPEAKING:
            self._phase = _Phase.DECODING
            self._speech_ended_at = now
        return []

    def recognized(self, speech: SpeechInput | None, now: float) -> list[TurnAction]:
        """The recognizer's final result for the utterance (None or empty text: nothing understood).

        As in VoiceXML, speech that was heard but not recognized is a no-match, not silence: the
        flow answers it with its no-match prompt instead of waiting out the no-input timeout.
        """
        if self._phase not in (_Phase.SPEAKING, _Phase.DECODING):
            return []
        if speech is None or not speech.text.strip():
            speech = SpeechInput("", 0.0, speech.language if speech else "", shed=speech.shed if speech else False)
        return self._finish(speech)

    def next_deadline(self) -> float | None:
        if self._phase is _Phase.WAITING:
            collector_deadline = self._collector.next_deadline() if self._collector else None
            if collector_deadline is not None:
                return collector_deadline
            assert self._waiting_since is not None
            return self._waiting_since + self.spec.no_input_timeout_s
        if self._phase is _Phase.SPEAKING:
            assert self._speech_started_at is not None
            return self._speech_started_at + self.spec.max_utterance_s
        if self._phase is _Phase.DECODING:
            assert self._speech_ended_at is not None
            return self._speech_ended_at + DECODE_TIMEOUT_S
        return None

    def handle_timer(self, now: float) -> list[TurnAction]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self._phase is _Phase.SPEAKING:
            self._phase = _Phase.DECODING
            self._speech_ended_at = now
            return [TurnAction.END_UTTERANCE]
        if self._collector is not None and self._collector.started:
            return self._finish(self._collector.handle_timer(now) or DigitsInput(self._collector.digits))
        return self._finish(NoInput())
