from __future__ import annotations

from ivr.recording.timeline import MAX_SKEW_SAMPLES, ChannelClock


def test_first_frame_lands_at_its_arrival() -> None:
    assert ChannelClock().place(800, 12345, 1) == 800


def test_jitter_does_not_move_frames_off_their_rtp_spacing() -> None:
    clock = ChannelClock()
    assert clock.place(800, 1000, 1) == 800
    assert clock.place(1000, 1160, 1) == 960  # arrived 40 samples late
    assert clock.place(1080, 1320, 1) == 1120  # 40 early


def test_rtp_timestamps_wrap() -> None:
    clock = ChannelClock()
    clock.place(0, 0xFFFFFF60, 1)
    assert clock.place(160, 0, 1) == 160


def test_a_new_ssrc_or_a_large_skew_re_anchors_at_arrival() -> None:
    clock = ChannelClock()
    clock.place(0, 0, 1)
    assert clock.place(160, 999_999, 1) == 160
    assert clock.place(320, 160, 2) == 320
    assert clock.place(320 + MAX_SKEW_SAMPLES + 500, 320, 2) == 320 + MAX_SKEW_SAMPLES + 500


def test_positions_are_never_negative() -> None:
    clock = ChannelClock()
    clock.place(100, 1000, 1)
    assert clock.place(0, 880, 1) == 0
