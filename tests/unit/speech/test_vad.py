from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ivr.call import ListenSpec
from ivr.speech import (
    Endpointer,
    EndpointerConfig,
    EndpointState,
    EndReason,
    NoInputTimedOut,
    SpeechStarted,
    UtteranceEnded,
)
from ivr.speech.events import EndpointEvent
from ivr.speech.vad import FRAME_SAMPLES

from .conftest import RATE, load_wav, silence, voiced

HANGOVER_S = 0.16
"""webrtcvad keeps calling a few frames voiced after a voice stops (about 120 ms); ends may be that late."""


def within_hangover(actual: float, expected: float) -> bool:
    return expected - 1e-9 <= actual <= expected + HANGOVER_S


def run(ep: Endpointer, audio: npt.NDArray[np.int16], start: float = 0.0) -> list[EndpointEvent]:
    """Feed whole frames, frame i arriving at start + (i + 1) * 20 ms."""
    events: list[EndpointEvent] = []
    for i in range(len(audio) // FRAME_SAMPLES):
        events += ep.process(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES], start + (i + 1) * 0.02)
    return events


def test_silence_times_out_exactly_at_the_no_input_deadline() -> None:
    ep = Endpointer(EndpointerConfig(no_input_timeout_s=5.0), now=10.0)
    assert ep.next_deadline() == 15.0
    assert run(ep, silence(4.9), start=10.0) == []
    assert ep.handle_timer(14.99) == []
    assert ep.handle_timer(15.0) == [NoInputTimedOut(at_s=15.0)]
    assert ep.state is EndpointState.DONE and ep.next_deadline() is None
    assert run(ep, voiced(1.0), start=15.0) == []


def test_no_input_fires_from_a_frame_when_audio_keeps_coming() -> None:
    ep = Endpointer(EndpointerConfig(no_input_timeout_s=1.0), now=0.0)
    events = run(ep, silence(1.5))
    assert events == [NoInputTimedOut(at_s=pytest.approx(1.0))]


def test_burst_gives_barge_in_within_200ms_and_end_after_700ms_of_silence() -> None:
    ep = Endpointer(EndpointerConfig(), now=0.0)
    events = run(ep, np.concatenate([silence(1.0), voiced(1.0), silence(1.5)]))
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, UtteranceEnded)
    assert started.onset_s == pytest.approx(1.0)
    assert 1.0 < started.at_s <= 1.2, "barge-in must be signalled within 200 ms of speech onset"
    assert ended.reason is EndReason.END_OF_SPEECH
    assert within_hangover(ended.at_s, 2.0 + 0.7)
    assert within_hangover(ended.speech_s, 1.0)
    # pre-roll: the utterance starts 300 ms before the onset and runs to the end of the trailing silence
    assert len(started.audio) == round((0.3 + (started.at_s - 1.0)) * RATE)
    assert len(ended.audio) == round((0.3 + ended.at_s - 1.0) * RATE)
    assert not np.any(ended.audio[: round(0.3 * RATE)]), "pre-roll is the silence before the onset"


def test_short_pause_does_not_split_an_utterance() -> None:
    ep = Endpointer(EndpointerConfig(end_of_speech_s=0.7), now=0.0)
    audio = np.concatenate([silence(0.5), voiced(0.6), silence(0.4), voiced(0.6), silence(1.0)])
    events = run(ep, audio)
    assert [type(e) for e in events] == [SpeechStarted, UtteranceEnded]
    assert within_hangover(events[1].speech_s, 1.6)  # type: ignore[union-attr]


def test_end_of_speech_silence_is_tunable() -> None:
    ep = Endpointer(EndpointerConfig(end_of_speech_s=0.3), now=0.0)
    events = run(ep, np.concatenate([silence(0.5), voiced(0.5), silence(1.0)]))
    assert within_hangover(events[-1].at_s, 1.0 + 0.3)


def test_max_utterance_length_ends_a_caller_who_never_stops() -> None:
    ep = Endpointer(EndpointerConfig(max_utterance_s=2.0), now=0.0)
    events = run(ep, np.concatenate([silence(0.2), voiced(5.0)]))
    ended = events[-1]
    assert isinstance(ended, UtteranceEnded) and ended.reason is EndReason.MAX_LENGTH
    assert ended.at_s == pytest.approx(0.2 + 2.0)


def test_quiet_line_noise_is_not_speech() -> None:
    noise = np.random.default_rng(7).normal(0, 30, 3 * RATE).astype(np.int16)
    ep = Endpointer(EndpointerConfig(no_input_timeout_s=10.0), now=0.0)
    assert run(ep, noise) == []
    assert ep.state is EndpointState.WAITING


def test_real_tts_speech_is_one_utterance_that_keeps_its_start() -> None:
    speech = load_wav("cmn_claim.wav")
    ep = Endpointer(EndpointerConfig(), now=0.0)
    events = run(ep, np.concatenate([silence(0.5), speech, silence(1.5)]))
    assert [type(e) for e in events] == [SpeechStarted, UtteranceEnded]
    started, ended = events
    first_loud = 0.5 + np.argmax(np.abs(speech) > 500) / RATE
    assert started.at_s - first_loud <= 0.25  # type: ignore[union-attr]
    assert started.onset_s <= first_loud  # type: ignore[union-attr]
    # the whole spoken part is inside the utterance audio
    assert len(ended.audio) >= len(speech) - 0.7 * RATE  # type: ignore[union-attr]


def test_restart_rearms_for_the_next_listen() -> None:
    ep = Endpointer(EndpointerConfig(no_input_timeout_s=1.0), now=0.0)
    run(ep, np.concatenate([silence(0.2), voiced(0.5), silence(1.0)]))
    assert ep.state is EndpointState.DONE
    ep.restart(now=5.0)
    assert ep.state is EndpointState.WAITING and ep.next_deadline() == 6.0


def test_config_follows_the_flow_listen_spec() -> None:
    cfg = EndpointerConfig.from_listen_spec(
        ListenSpec(no_input_timeout_s=3.0, end_of_speech_s=0.5, max_utterance_s=9.0)
    )
    assert (cfg.no_input_timeout_s, cfg.end_of_speech_s, cfg.max_utterance_s) == (3.0, 0.5, 9.0)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros(80, np.int16), r"160 int16 samples, got int16\(80,\)"),
        (np.zeros(160, np.float32), "float32"),
    ],
    ids=["short", "float"],
)
def test_bad_frames_are_refused(frame: npt.NDArray[np.int16], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Endpointer(EndpointerConfig(), now=0.0).process(frame, 0.02)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="aggressiveness must be 0..3"):
        EndpointerConfig(aggressiveness=4)
