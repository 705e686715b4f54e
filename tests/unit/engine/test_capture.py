"""`Capture`: when and why a recording of the caller ends, driven by frames and a clock passed in."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ivr.call import CaptureEnd, CaptureSpec
from ivr.engine.capture import Capture

RATE = 8000
FRAME = 160


def voiced(seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    sig = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 20))
    return (6000 * sig / np.abs(sig).max()).astype(np.int16)


def quiet(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def feed(capture: Capture, audio: npt.NDArray[np.int16], start: float) -> tuple[CaptureEnd | None, float]:
    now = start
    for i in range(0, len(audio), FRAME):
        now += FRAME / RATE
        ended = capture.frame(audio[i : i + FRAME], now)
        if ended is not None:
            return ended, now
    return None, now


def test_silence_after_speech_ends_it_and_the_silence_is_cut() -> None:
    capture = Capture(CaptureSpec(silence_s=2.0, max_length_s=60), now=0.0)
    ended, at = feed(capture, np.concatenate([quiet(0.5), voiced(2.0), quiet(5.0)]), 0.0)
    assert ended is CaptureEnd.SILENCE
    assert 4.3 <= at <= 4.8  # 0.5 s + 2 s of speech + 2 s of silence (webrtcvad hangs on ~0.1 s)
    kept = len(capture.audio()) / RATE
    assert 2.7 <= kept <= 3.3  # the silence that ended it is cut to half a second


def test_the_end_key_ends_it_and_other_keys_do_not() -> None:
    capture = Capture(CaptureSpec(end_keys="#"), now=0.0)
    feed(capture, voiced(1.0), 0.0)
    assert capture.key("5") is None
    assert capture.key("#") is CaptureEnd.TERMINATOR
    assert len(capture.audio()) == RATE


def test_nothing_said_is_no_input_by_the_clock() -> None:
    capture = Capture(CaptureSpec(no_input_timeout_s=4.0), now=10.0)
    assert capture.next_deadline() == 14.0
    assert capture.handle_timer(13.9) is None
    assert capture.handle_timer(14.0) is CaptureEnd.NO_INPUT
    assert len(capture.audio()) == 0


def test_once_speech_started_only_max_length_is_on_the_clock() -> None:
    capture = Capture(CaptureSpec(no_input_timeout_s=4.0, max_length_s=30.0), now=0.0)
    feed(capture, voiced(1.0), 0.0)
    assert capture.heard_speech and capture.next_deadline() == 30.0
    assert capture.handle_timer(29.0) is None
    assert capture.handle_timer(30.0) is CaptureEnd.MAX_LENGTH


def test_max_length_by_frames_keeps_exactly_max_length() -> None:
    capture = Capture(CaptureSpec(max_length_s=5.0, silence_s=3.0), now=0.0)
    ended, _ = feed(capture, voiced(8.0), 0.0)
    assert ended is CaptureEnd.MAX_LENGTH
    assert len(capture.audio()) == 5 * RATE


def test_hang_up_keeps_what_was_said() -> None:
    capture = Capture(CaptureSpec(), now=0.0)
    feed(capture, voiced(1.5), 0.0)
    assert capture.hung_up() is CaptureEnd.HANGUP
    assert len(capture.audio()) == round(1.5 * RATE)


@pytest.mark.parametrize("end", ["hangup", "end key"])
def test_silence_alone_is_no_message_however_it_ends(end: str) -> None:
    """A caller who hangs up (or presses the end key) during the beep's silence left nothing: no recording, so no
    message of silence and no callback for it (the demo's night complaint line stored one when a test caller's
    linger ran out mid-recording)."""
    capture = Capture(CaptureSpec(end_keys="#", no_input_timeout_s=10.0), now=0.0)
    feed(capture, quiet(4.0), 0.0)
    ended = capture.hung_up() if end == "hangup" else capture.key("#")
    assert ended is not None and ended is not CaptureEnd.NO_INPUT
    assert len(capture.audio()) == 0


@pytest.mark.parametrize("shape", [(80,), (160, 2)], ids=["short", "stereo"])
def test_odd_frames_are_ignored(shape: tuple[int, ...]) -> None:
    capture = Capture(CaptureSpec(), now=0.0)
    assert capture.frame(np.zeros(shape, dtype=np.int16), 0.02) is None
    assert len(capture.audio()) == 0


def test_leading_silence_is_cut_to_half_a_second_before_the_first_word() -> None:
    capture = Capture(CaptureSpec(no_input_timeout_s=10.0), now=0.0)
    feed(capture, np.concatenate([quiet(3.0), voiced(1.0)]), 0.0)
    assert capture.key("#") is CaptureEnd.TERMINATOR
    kept = len(capture.audio()) / RATE
    assert 1.45 <= kept <= 1.55
