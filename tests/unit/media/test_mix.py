from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ivr.media.g711 import PCMA, PCMU
from ivr.media.mix import SampleFifo, mix, mix_payload


def _samples(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int16)


def test_fifo_takes_in_order_and_pads_with_silence() -> None:
    fifo = SampleFifo(capacity=8)
    fifo.push(_samples([1, 2, 3]))
    fifo.push(_samples([4]))
    assert fifo.take(2).tolist() == [1, 2]
    assert fifo.take(4).tolist() == [3, 4, 0, 0]
    assert len(fifo) == 0


def test_fifo_drops_the_oldest_when_full() -> None:
    fifo = SampleFifo(capacity=4)
    fifo.push(_samples([1, 2, 3]))
    fifo.push(_samples([4, 5, 6]))
    assert fifo.dropped == 2
    assert fifo.take(4).tolist() == [3, 4, 5, 6]
    fifo.push(_samples(list(range(10))))
    assert fifo.take(4).tolist() == [6, 7, 8, 9] and fifo.dropped == 8


@given(st.lists(st.lists(st.integers(-32768, 32767), min_size=0, max_size=50), max_size=20),
       st.integers(1, 64))
def test_fifo_never_holds_more_than_its_capacity_and_keeps_the_newest(pushes: list[list[int]], capacity: int) -> None:
    fifo = SampleFifo(capacity=capacity)
    everything: list[int] = []
    for chunk in pushes:
        fifo.push(_samples(chunk))
        everything += chunk
    kept = len(fifo)
    assert kept == min(capacity, len(everything))
    assert fifo.take(kept).tolist() == everything[len(everything) - kept :]


def test_mix_sums_and_clips() -> None:
    out = mix([_samples([1000, 30000, -30000]), _samples([2000, 10000, -10000])])
    assert out.tolist() == [3000, 32767, -32768] and out.dtype == np.int16


def test_mix_payload_adds_a_secondary_in_the_target_law() -> None:
    primary = np.full(160, 1000, dtype=np.int16)
    fifo = SampleFifo()
    fifo.push(np.full(80, 2000, dtype=np.int16))
    out = PCMA.decode(mix_payload(PCMU.encode(primary), PCMU, [fifo], PCMA)).astype(int)
    assert np.abs(out[:80] - 3000).max() < 120 and np.abs(out[80:] - 1000).max() < 40
