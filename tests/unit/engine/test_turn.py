from __future__ import annotations

from ivr.call import DigitsInput, ListenSpec, NoInput, SpeechInput
from ivr.engine.turn import DECODE_TIMEOUT_S, Turn, TurnAction

SPEECH = SpeechInput("I want to file a claim", 0.8, "en")


def test_no_input_clock_starts_when_prompt_ends() -> None:
    turn = Turn(ListenSpec(no_input_timeout_s=5.0), started_at=0.0)
    assert turn.next_deadline() is None
    turn.prompt_finished(now=4.0)
    assert turn.next_deadline() == 9.0
    assert turn.handle_timer(now=8.9) == []
    assert turn.handle_timer(now=9.0) == [TurnAction.FINISH]
    assert turn.result == NoInput()


def test_speech_barges_in_and_is_kept() -> None:
    turn = Turn(ListenSpec(barge_in=True), started_at=0.0)
    assert turn.speech_started(now=1.0) == [TurnAction.STOP_PROMPT]
    assert turn.speech_ended(now=2.0) == []
    assert turn.recognized(SPEECH, now=2.1) == [TurnAction.FINISH]
    assert turn.result == SPEECH


def test_without_barge_in_speech_during_prompt_is_ignored() -> None:
    turn = Turn(ListenSpec(barge_in=False), started_at=0.0)
    assert turn.speech_started(now=1.0) == []
    assert turn.digit("1", now=1.5) == []
    turn.prompt_finished(now=3.0)
    assert turn.digit("1", now=3.5) == [TurnAction.FINISH]
    assert turn.result == DigitsInput("1")


def test_key_during_speech_wins_and_cancels_decoding() -> None:
    turn = Turn(ListenSpec(max_digits=1), started_at=0.0, prompting=False)
    turn.speech_started(now=0.5)
    assert turn.digit("0", now=0.8) == [TurnAction.CANCEL_SPEECH, TurnAction.FINISH]
    assert turn.result == DigitsInput("0")
    assert turn.recognized(SPEECH, now=1.0) == []
    assert turn.result == DigitsInput("0")


def test_speech_heard_but_not_recognized_is_a_no_match() -> None:
    turn = Turn(ListenSpec(no_input_timeout_s=5.0), started_at=0.0, prompting=False)
    turn.speech_started(now=1.0)
    turn.speech_ended(now=1.3)
    assert turn.recognized(None, now=1.4) == [TurnAction.FINISH]
    assert turn.result == SpeechInput("", 0.0, "")


def test_an_utterance_shed_under_overload_stays_marked_shed() -> None:
    turn = Turn(ListenSpec(), started_at=0.0, prompting=False)
    turn.speech_started(now=1.0)
    turn.speech_ended(now=3.0)
    assert turn.recognized(SpeechInput("", 0.0, "en", shed=True), now=3.0) == [TurnAction.FINISH]
    assert turn.result == SpeechInput("", 0.0, "en", shed=True), "not an ordinary no-match: the flow goes to keys"


def test_partial_keys_end_at_inter_digit_timeout() -> None:
    turn = Turn(ListenSpec(max_digits=8, inter_digit_timeout_s=3.0), started_at=0.0, prompting=False)
    turn.digit("1", now=1.0)
    turn.digit("2", now=2.0)
    assert turn.next_deadline() == 5.0
    assert turn.handle_timer(now=5.0) == [TurnAction.FINISH]
    assert turn.result == DigitsInput("12")


def test_overlong_utterance_is_cut_then_decode_timeout_gives_no_input() -> None:
    turn = Turn(ListenSpec(max_utterance_s=10.0), started_at=0.0, prompting=False)
    turn.speech_started(now=1.0)
    assert turn.handle_timer(now=11.0) == [TurnAction.END_UTTERANCE]
    assert turn.next_deadline() == 11.0 + DECODE_TIMEOUT_S
    assert turn.handle_timer(now=11.0 + DECODE_TIMEOUT_S) == [TurnAction.FINISH]
    assert turn.result == NoInput()


def test_keys_disabled_ignores_digits() -> None:
    turn = Turn(ListenSpec(max_digits=0), started_at=0.0, prompting=False)
    assert turn.digit("5", now=1.0) == []
    assert not turn.done
