"""A closed session's sockets drain, then serve a new session; what the old call's peer still sends is lost."""

from __future__ import annotations

import asyncio

import pytest

from ivr.clock import FakeClock
from ivr.media.g711 import PCMU
from ivr.rtp import MediaEngine, MediaParams, PortsExhausted, RtpPacket
from ivr.rtp.recycling import DRAIN_S, KEEP_S, SocketPair, SocketRecycler
from ivr.testing.rtpprobe import MemoryNetwork, MemoryPort

OLD_PEER = ("127.0.0.1", 4000)
NEW_PEER = ("127.0.0.1", 4100)


def rtp(seq: int) -> bytes:
    return RtpPacket(0, seq, seq * 160, 0x77, PCMU.silence()).serialize()


async def test_a_closed_sessions_sockets_serve_a_new_session_only_after_draining(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    old = await engine.open_session(call_id="old")
    old.start(MediaParams(remote=OLD_PEER))
    old.close()
    early = await engine.open_session(call_id="early")  # the old pair is still draining: a new bind
    assert early.local_port != old.local_port
    net.inject(rtp(1), OLD_PEER, old.local)  # the old caller's late packet: read and dropped
    await clock.advance(DRAIN_S)
    new = await engine.open_session(call_id="new")
    assert new.local_port == old.local_port and net.port(new.local) is net.port(old.local)
    new.start(MediaParams(remote=NEW_PEER))
    await clock.advance(0.02)
    assert new.inbound is not None and new.inbound.stats.received == 0
    net.inject(rtp(1), NEW_PEER, new.local)
    await clock.advance(0.02)
    assert new.inbound.stats.received == 1 and new.remote == NEW_PEER


async def test_the_old_callers_late_packets_never_take_the_new_callers_stream(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    """The old call's phone keeps sending past the drain (its BYE was slow); it shares the new caller's IP (a
    redial, or one SBC), so NAT mode could latch to it: the port's previous source is never latched to."""
    old = await engine.open_session(call_id="old")
    old.start(MediaParams(remote=OLD_PEER))
    net.inject(rtp(1), OLD_PEER, old.local)
    await clock.advance(0.02)
    assert old.remote == OLD_PEER  # latched
    old.close()
    await clock.advance(DRAIN_S)
    new = await engine.open_session(call_id="new")
    assert new.local_port == old.local_port
    new.start(MediaParams(remote=NEW_PEER, symmetric=True))
    net.inject(rtp(2), OLD_PEER, new.local)  # late, before the new caller's first packet
    await clock.advance(0.02)
    assert new.inbound is not None and new.inbound.stats.received == 0
    assert new.inbound.counters.wrong_source >= 1
    net.inject(rtp(1), NEW_PEER, new.local)
    await clock.advance(0.02)
    assert new.inbound.stats.received == 1 and new.remote == NEW_PEER


async def test_pairs_nobody_takes_are_closed_and_their_ports_freed(
    engine: MediaEngine, clock: FakeClock, net: MemoryNetwork
) -> None:
    session = await engine.open_session()
    session.close()
    assert engine.ports.in_use == 1 and session.local in net.ports
    await clock.advance(KEEP_S + 1)
    other = await engine.open_session()
    assert session.local not in net.ports and engine.ports.in_use == 1 and other.local_port != session.local_port


async def test_a_session_whose_media_failed_closes_its_sockets(engine: MediaEngine, net: MemoryNetwork) -> None:
    session = await engine.open_session()
    session.start(MediaParams(remote=OLD_PEER))
    net.port(session.local).lose()
    await asyncio.sleep(0)
    assert session.failure is not None
    session.close()
    assert engine.ports.in_use == 0 and (session.local[0], session.local_port + 1) not in net.ports


async def test_a_full_port_range_closes_waiting_pairs_for_new_binds(clock: FakeClock, net: MemoryNetwork) -> None:
    engine = MediaEngine(clock=clock, network=net, port_first=30000, port_last=30003)  # two pairs
    try:
        for _ in range(2):
            (await engine.open_session()).close()
        assert engine.ports.in_use == 2
        assert (await engine.open_session()).local_port in (30000, 30002)  # one waiting pair closed for it
        await engine.open_session()
        with pytest.raises(PortsExhausted):
            await engine.open_session()
    finally:
        engine.close()
    assert net.ports == {}


def test_the_recycler_is_bounded_and_skips_sockets_lost_while_waiting() -> None:
    net, released = MemoryNetwork(), []
    recycler = SocketRecycler(released.append, drain_s=0.5, keep_s=10.0, max_pairs=2)
    pairs = [SocketPair(n, MemoryPort(net, ("h", n)), MemoryPort(net, ("h", n + 1))) for n in (10, 12, 14)]
    for pair in pairs:
        recycler.give(pair, 0.0)
    assert len(recycler) == 2 and released == [14] and pairs[2].rtp.closed  # full: the third is closed
    pairs[0].rtp.alive = False  # type: ignore[attr-defined]  # its socket died while it waited
    assert recycler.take(0.4) is None
    assert recycler.take(0.5) is pairs[1] and released == [14, 10]
