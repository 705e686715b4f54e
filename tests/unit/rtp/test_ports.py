from __future__ import annotations

import random

import pytest

from ivr.rtp.errors import PortsExhausted
from ivr.rtp.ports import PortAllocator


def test_every_even_port_with_room_for_rtcp_is_handed_out_once() -> None:
    ports = PortAllocator(10001, 10009, rng=random.Random(1))
    got = [ports.acquire() for _ in range(4)]
    assert sorted(got) == [10002, 10004, 10006, 10008]
    with pytest.raises(PortsExhausted, match=r"no free RTP port pair in 10002-10009 \(4 in use\)"):
        ports.acquire()


def test_ports_are_drawn_at_random_so_the_next_one_cannot_be_guessed() -> None:
    ports = PortAllocator(20000, 29999, rng=random.Random(7))
    got = [ports.acquire() for _ in range(20)]
    steps = {b - a for a, b in zip(got, got[1:], strict=False)}
    assert len(steps) > 10  # not a fixed stride
    assert all(20000 <= p <= 29998 and p % 2 == 0 for p in got)


def test_a_released_port_can_be_drawn_again() -> None:
    ports = PortAllocator(20000, 20003, rng=random.Random(3))
    a, b = ports.acquire(), ports.acquire()
    assert {a, b} == {20000, 20002}
    ports.release(a)
    assert ports.acquire() == a


def test_bad_range_is_named() -> None:
    with pytest.raises(ValueError, match="bad RTP port range 70000-60000"):
        PortAllocator(70000, 60000)
