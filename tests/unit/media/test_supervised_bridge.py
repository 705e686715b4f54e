"""A third party on a bridge: who hears whom in each mode, mixed in the linear domain, taps."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.media.bridge import Bridge, RelayedPacket, SupervisorMode
from ivr.media.g711 import PCMA, PCMU, G711Codec
from ivr.media.goertzel import goertzel_basis, tone_powers
from ivr.media.tones import tone

from .test_bridge import FakeLeg

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 600.0, 1000.0, 1500.0


def _frames(frequency_hz: float, count: int) -> list[NDArray[np.int16]]:
    audio = tone((frequency_hz,), count * 0.02, level_dbfs=-12.0)
    return [audio[i * 160 : (i + 1) * 160] for i in range(count)]


def _talk(leg: FakeLeg, frequency_hz: float, count: int = 10) -> None:
    for i, frame in enumerate(_frames(frequency_hz, count)):
        leg.receive(RelayedPacket(leg.codec.encode(frame), i * 160, 77, False, False))


def _heard(leg: FakeLeg) -> set[float]:
    """Which of the three tones `leg` was sent (Goertzel power well above the rest)."""
    if not leg.sent:
        return set()
    audio = np.concatenate([leg.codec.decode(p.payload) for p in leg.sent if not p.is_event]).astype(np.float64)
    frequencies = (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)
    powers = tone_powers(audio[None, : len(audio) // 160 * 160], goertzel_basis(frequencies, len(audio) // 160 * 160,
                                                                                  8000))[0]
    return {f for f, p in zip(frequencies, powers, strict=True) if p > 0.05 * max(powers.max(), 1e-9)}


def _party(codecs: tuple[G711Codec, G711Codec, G711Codec], mode: SupervisorMode | None) -> tuple[FakeLeg, ...]:
    caller, agent, supervisor = (FakeLeg(c) for c in codecs)
    bridge = Bridge(caller, agent)
    if mode is not None:
        bridge.join(supervisor, mode)
    # Interleaved as on the wire: each speaks one packet per 20 ms.
    for i, frames in enumerate(zip(_frames(CALLER_HZ, 20), _frames(AGENT_HZ, 20), _frames(SUPERVISOR_HZ, 20),
                                   strict=True)):
        for leg, frame in zip((caller, agent, supervisor), frames, strict=True):
            if leg.forward is not None:
                leg.receive(RelayedPacket(leg.codec.encode(frame), i * 160, id(leg) & 0xFFFF, False, False))
    return caller, agent, supervisor


@pytest.mark.parametrize(
    ("mode", "caller_hears", "agent_hears", "supervisor_hears"),
    [
        (None, {AGENT_HZ}, {CALLER_HZ}, set()),
        (SupervisorMode.LISTEN, {AGENT_HZ}, {CALLER_HZ}, {CALLER_HZ, AGENT_HZ}),
        (SupervisorMode.WHISPER, {AGENT_HZ}, {CALLER_HZ, SUPERVISOR_HZ}, {CALLER_HZ, AGENT_HZ}),
        (SupervisorMode.BARGE, {AGENT_HZ, SUPERVISOR_HZ}, {CALLER_HZ, SUPERVISOR_HZ}, {CALLER_HZ, AGENT_HZ}),
    ],
    ids=["bridge", "listen", "whisper", "barge"],
)
@pytest.mark.parametrize("codecs", [(PCMU, PCMU, PCMU), (PCMU, PCMA, PCMU)], ids=["pcmu", "mixed-laws"])
def test_who_hears_whom(
    mode: SupervisorMode | None,
    caller_hears: set[float],
    agent_hears: set[float],
    supervisor_hears: set[float],
    codecs: tuple[G711Codec, G711Codec, G711Codec],
) -> None:
    caller, agent, supervisor = _party(codecs, mode)
    assert _heard(caller) == caller_hears
    assert _heard(agent) == agent_hears
    assert _heard(supervisor) == supervisor_hears


def test_a_mix_keeps_the_primary_timing_and_one_packet_per_packet() -> None:
    caller, agent, supervisor = _party((PCMU, PCMU, PCMU), SupervisorMode.BARGE)
    assert len(agent.sent) == 20 and [p.timestamp for p in agent.sent] == [i * 160 for i in range(20)]


def test_leaving_restores_the_two_way_relay_and_the_supervisors_own_sending() -> None:
    caller, agent, supervisor = FakeLeg(PCMU), FakeLeg(PCMU), FakeLeg(PCMU)
    bridge = Bridge(caller, agent)
    bridge.join(supervisor, SupervisorMode.BARGE)
    bridge.release(supervisor)
    assert not supervisor.relaying and bridge.open and bridge.third is None
    _talk(caller, CALLER_HZ)
    assert _heard(agent) == {CALLER_HZ} and supervisor.sent == []


def test_closing_the_bridge_lets_the_supervisor_go_too() -> None:
    caller, agent, supervisor = FakeLeg(PCMU), FakeLeg(PCMU), FakeLeg(PCMU)
    bridge = Bridge(caller, agent)
    bridge.join(supervisor, SupervisorMode.LISTEN)
    bridge.release(agent)
    assert not bridge.open and not (caller.relaying or agent.relaying or supervisor.relaying)


def test_a_second_supervisor_is_refused() -> None:
    bridge = Bridge(FakeLeg(PCMU), FakeLeg(PCMU))
    bridge.join(FakeLeg(PCMU), SupervisorMode.LISTEN)
    with pytest.raises(ValueError, match="already has a third party"):
        bridge.join(FakeLeg(PCMU), SupervisorMode.LISTEN)


class Tap:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, str]] = []
        self.closed_count = 0

    def packet(self, side: int, packet: RelayedPacket, codec: G711Codec) -> None:
        self.seen.append((side, packet.timestamp, codec.name))

    def closed(self) -> None:
        self.closed_count += 1


def test_a_tap_sees_both_sides_with_their_codec_and_hears_the_close_once() -> None:
    caller, agent, supervisor = FakeLeg(PCMU), FakeLeg(PCMA), FakeLeg(PCMU)
    bridge = Bridge(caller, agent)
    tap = Tap()
    bridge.add_tap(tap)
    bridge.join(supervisor, SupervisorMode.BARGE)
    _talk(caller, CALLER_HZ, 2)
    _talk(agent, AGENT_HZ, 2)
    _talk(supervisor, SUPERVISOR_HZ, 2)  # the supervisor is not a side of the recording
    assert tap.seen == [(0, 0, "PCMU"), (0, 160, "PCMU"), (1, 0, "PCMA"), (1, 160, "PCMA")]
    bridge.close()
    bridge.close()
    assert tap.closed_count == 1


def test_a_removed_tap_sees_nothing_more() -> None:
    caller, agent = FakeLeg(PCMU), FakeLeg(PCMU)
    bridge = Bridge(caller, agent)
    tap = Tap()
    remove = bridge.add_tap(tap)
    remove()
    _talk(caller, CALLER_HZ, 2)
    assert tap.seen == [] and len(agent.sent) == 2
