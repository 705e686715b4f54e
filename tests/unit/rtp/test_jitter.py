from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.jitter import JitterBuffer, JitterConfig, PlayoutFrame, PushResult


def payload(seq: int) -> bytes:
    return seq.to_bytes(2, "big") * 80


def run(buffer: JitterBuffer, arrivals: list[tuple[int, float]]) -> list[PlayoutFrame]:
    """Push (seq, arrival time) pairs, popping after each as the session does."""
    out: list[PlayoutFrame] = []
    for seq, now in arrivals:
        buffer.push(seq, seq * 160, payload(seq), now)
        out += buffer.pop(now)
    return out


def seqs(frames: list[PlayoutFrame]) -> list[int]:
    return [f.sequence_number for f in frames]


def test_in_order_stream_comes_out_unchanged_after_the_initial_delay() -> None:
    buffer = JitterBuffer()
    out = run(buffer, [(n, n * 0.02) for n in range(10)])
    assert seqs(out) == list(range(10))
    assert all(f.payload == payload(f.sequence_number) for f in out)
    assert buffer.stats.lost == buffer.stats.duplicates == 0


def test_reordered_packets_are_put_back_in_order() -> None:
    order = [0, 1, 2, 4, 3, 5, 7, 6, 8, 9, 10]
    out = run(JitterBuffer(), [(seq, i * 0.02) for i, seq in enumerate(order)])
    assert seqs(out) == list(range(11))
    assert all(f.payload is not None for f in out)


def test_a_stream_that_starts_out_of_order_starts_at_its_lowest_sequence() -> None:
    out = run(JitterBuffer(), [(2, 0.0), (0, 0.005), (1, 0.01), (3, 0.06)])
    assert seqs(out) == [0, 1, 2, 3]


def test_duplicates_are_dropped_whether_held_or_already_played() -> None:
    buffer = JitterBuffer()
    out = run(buffer, [(0, 0.0), (1, 0.02), (2, 0.04), (2, 0.045), (1, 0.05), (3, 0.06), (3, 0.07)])
    assert seqs(out) == [0, 1, 2, 3]
    assert buffer.stats.duplicates == 3
    assert buffer.push(0, 0, b"", 0.1) is PushResult.DUPLICATE


def test_a_lost_packet_is_given_up_after_the_target_delay_and_marked() -> None:
    buffer = JitterBuffer(JitterConfig(min_delay_s=0.04))
    out = run(buffer, [(0, 0.0), (1, 0.02), (2, 0.04), (4, 0.08), (5, 0.10)])
    assert seqs(out) == [0, 1, 2]  # 3 is still awaited: 4 arrived only 20 ms ago
    out += run(buffer, [(6, 0.12)])
    assert seqs(out) == [0, 1, 2, 3, 4, 5, 6]
    lost = out[3]
    assert lost.payload is None and lost.timestamp == 3 * 160
    assert buffer.stats.lost == 1


def test_a_packet_arriving_after_its_slot_is_late_and_raises_the_delay() -> None:
    buffer = JitterBuffer(JitterConfig(min_delay_s=0.02))
    run(buffer, [(0, 0.0), (1, 0.02), (3, 0.06), (4, 0.08)])
    before = buffer.target_delay_s
    assert buffer.push(2, 320, payload(2), 0.09) is PushResult.LATE
    assert buffer.stats.late == 1
    assert buffer.target_delay_s > before


def test_delay_adapts_to_jitter_within_bounds() -> None:
    config = JitterConfig(min_delay_s=0.02, max_delay_s=0.12)
    calm, rough = JitterBuffer(config), JitterBuffer(config)
    run(calm, [(n, n * 0.02) for n in range(100)])
    run(rough, [(n, n * 0.02 + (0.03 if n % 3 == 0 else 0.0)) for n in range(100)])
    assert calm.target_delay_s == 0.02
    assert 0.04 < rough.target_delay_s <= 0.12


def test_buffer_overflow_forces_the_gap_out() -> None:
    buffer = JitterBuffer(JitterConfig(max_packets=5, max_delay_s=10.0, min_delay_s=10.0))
    out = run(buffer, [(0, 0.0)] + [(n, 0.0) for n in range(2, 9)])
    out += buffer.pop(0.05)
    assert seqs(out)[:3] == [0, 1, 2]
    assert out[1].payload is None


def test_sequence_wrap_is_seamless() -> None:
    order = [65533, 65534, 65535, 1, 0, 2]
    out = run(JitterBuffer(), [(seq, i * 0.02) for i, seq in enumerate(order)])
    assert seqs(out) == [65533, 65534, 65535, 0, 1, 2]


def test_a_big_jump_restarts_the_stream() -> None:
    buffer = JitterBuffer()
    out = run(buffer, [(n, n * 0.02) for n in range(5)] + [(40000 + n, 0.1 + n * 0.02) for n in range(5)])
    assert seqs(out) == list(range(5)) + [40000 + n for n in range(5)]
    assert buffer.stats.resets == 1


def test_flush_releases_everything_with_gaps_marked() -> None:
    buffer = JitterBuffer()
    run(buffer, [(0, 0.0), (2, 0.01)])
    out = buffer.flush()
    assert seqs(out) == [0, 1, 2]
    assert [f.payload is None for f in out] == [False, True, False]


def test_lost_frame_timestamps_follow_the_learnt_packet_size() -> None:
    buffer = JitterBuffer()
    for n, seq in enumerate([0, 1, 2, 4]):
        buffer.push(seq, seq * 240, payload(seq), n * 0.03)  # 30 ms packets
    out = buffer.flush()
    assert [f.timestamp for f in out] == [0, 240, 480, 720, 960]


@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=120),
    st.lists(st.floats(0.0, 0.1), min_size=120, max_size=120),
)
def test_output_is_strictly_increasing_and_never_repeats(arrivals: list[int], delays: list[float]) -> None:
    buffer = JitterBuffer()
    out: list[PlayoutFrame] = []
    for i, seq in enumerate(arrivals):
        now = i * 0.02
        buffer.push(seq, seq * 160, payload(seq), now + delays[i])
        out += buffer.pop(now + delays[i])
    out += buffer.flush()
    got = seqs(out)
    assert got == sorted(set(got))
    assert {f.sequence_number for f in out if f.payload is not None} <= set(arrivals)
    for frame in out:
        if frame.payload is not None:
            assert frame.payload == payload(frame.sequence_number)


def _state(buffer: JitterBuffer) -> tuple[object, ...]:
    return (buffer.stats, round(buffer.target_delay_s, 12), len(buffer), buffer._next_seq, buffer._last_ts,
            buffer._last_seq, buffer._frame_ts, tuple(buffer._released), buffer._highest_seq)


@given(st.lists(st.tuples(st.integers(-3, 6), st.floats(0.0, 0.05), st.integers(0, 3)), max_size=80))
def test_releasing_in_order_is_push_then_pop(steps: list[tuple[int, float, int]]) -> None:
    """The fast path for the next packet with nothing held leaves the buffer as push + pop would, and gives
    the same frames, for any mix of reordering, duplicates, losses, timestamp steps and arrival times."""
    plain, fast = JitterBuffer(), JitterBuffer()
    seq, now = 65530, 0.0
    out_plain: list[PlayoutFrame] = []
    out_fast: list[PlayoutFrame] = []
    for jump, wait_s, ts_step in steps:
        seq, now = (seq + jump) & 0xFFFF, now + wait_s
        timestamp = (seq * 160 + ts_step * 80) & 0xFFFFFFFF
        plain.push(seq, timestamp, payload(seq), now)
        out_plain += plain.pop(now)
        if fast.release_in_order(seq, timestamp, now):
            out_fast.append(PlayoutFrame(seq, timestamp, payload(seq)))
        else:
            fast.push(seq, timestamp, payload(seq), now)
            out_fast += fast.pop(now)
        assert out_fast == out_plain
        assert _state(fast) == _state(plain)


def test_release_in_order_takes_only_the_next_packet_with_nothing_held() -> None:
    buffer = JitterBuffer()
    assert not buffer.release_in_order(0, 0, 0.0)  # nothing released yet: the initial delay applies
    buffer.push(0, 0, payload(0), 0.0)
    assert not buffer.release_in_order(1, 160, 0.01)  # packet 0 still held
    buffer.push(1, 160, payload(1), 0.01)
    assert seqs(buffer.pop(0.05)) == [0, 1]
    assert not buffer.release_in_order(3, 480, 0.06)  # 2 is missing: this one waits
    assert len(buffer) == 0 and buffer.stats.accepted == 2
    assert buffer.release_in_order(2, 320, 0.06)
    assert buffer.stats.accepted == 3
