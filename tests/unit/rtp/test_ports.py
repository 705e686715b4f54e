from __future__ import annotations

import pytest

from ivr.rtp.errors import PortsExhausted
from ivr.rtp.ports import PortAllocator


def test_even_ports_round_robin_with_room_for_rtcp() -> None:
    ports = PortAllocator(10001, 10009)
    got = [ports.acquire() for _ in range(4)]
    assert got == [10002, 10004, 10006, 10008]
    assert all(p % 2 == 0 and p + 1 <= 10009 for p in got)
    with pytest.raises(PortsExhausted, match=r"no free RTP port pair in 10002-10009 \(4 in use\)"):
        ports.acquire()


def test_a_released_port_is_reused_last() -> None:
    ports = PortAllocator(20000, 20007)
    a = ports.acquire()
    ports.release(a)
    assert [ports.acquire() for _ in range(4)] == [20002, 20004, 20006, 20000]


def test_bad_range_is_named() -> None:
    with pytest.raises(ValueError, match="bad RTP port range 70000-60000"):
        PortAllocator(70000, 60000)
