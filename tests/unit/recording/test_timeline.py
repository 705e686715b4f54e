from __future__ import annotations

from ivr.recording.timeline import JUMP_SAMPLES, MAX_SKEW_SAMPLES, PERSIST_SAMPLES, ChannelClock


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


def test_a_new_ssrc_or_a_timestamp_jump_re_anchors_at_arrival() -> None:
    clock = ChannelClock()
    clock.place(0, 0, 1)
    assert clock.place(160, 999_999, 1) == 160
    assert clock.place(320, 160, 2) == 320
    assert clock.place(480 + JUMP_SAMPLES + 1, 320, 2) == 480 + JUMP_SAMPLES + 1


def test_a_stalled_receiver_s_burst_keeps_its_rtp_spacing() -> None:
    """The machine stalls 600 ms, then reads the 30 frames that queued up at once: they were sent 20 ms apart
    and go where the sender put them, with no gap before them and no overlap after."""
    clock = ChannelClock()
    for i in range(10):
        assert clock.place(160 * i, 160 * i, 7) == 160 * i
    stall_end = 160 * 10 + 4800
    burst = [clock.place(stall_end, 160 * i, 7) for i in range(10, 40)]
    assert burst == [160 * i for i in range(10, 40)]
    assert clock.place(stall_end + 160, 160 * 40, 7) == 160 * 40  # caught up, still in step


def test_a_drift_that_persists_re_anchors_after_a_second() -> None:
    """A sender whose timestamps say 300 ms less than arrival, frame after frame: after PERSIST_SAMPLES of
    such arrivals the side follows arrival again (and stays in step with it from there)."""
    clock = ChannelClock()
    clock.place(0, 0, 3)
    offset = MAX_SKEW_SAMPLES + 800
    placed = [(160 * i + offset, clock.place(160 * i + offset, 160 * i, 3)) for i in range(1, 80)]
    re_anchored = [arrival for arrival, position in placed if position == arrival]
    assert re_anchored and re_anchored[0] == 160 + offset + PERSIST_SAMPLES
    assert all(position == arrival for arrival, position in placed if arrival >= re_anchored[0])
    assert all(position == arrival - offset for arrival, position in placed if arrival < re_anchored[0])


def test_positions_are_never_negative() -> None:
    clock = ChannelClock()
    clock.place(100, 1000, 1)
    assert clock.place(0, 880, 1) == 0
