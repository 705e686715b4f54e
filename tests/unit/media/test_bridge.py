from __future__ import annotations

import numpy as np
import pytest

from ivr.media.bridge import Bridge, Forward, RelayedPacket
from ivr.media.g711 import PCMA, PCMU, G711Codec


class FakeLeg:
    def __init__(self, codec: G711Codec) -> None:
        self.codec = codec
        self.forward: Forward | None = None
        self.sent: list[RelayedPacket] = []
        self.relaying = False

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        self.forward, self.relaying = forward, True

    def stop_relay(self) -> None:
        self.forward, self.relaying = None, False

    def send_relayed(self, packet: RelayedPacket) -> None:
        self.sent.append(packet)

    def receive(self, packet: RelayedPacket) -> None:
        assert self.forward is not None
        self.forward(packet)


def test_same_codec_relays_payload_untouched() -> None:
    a, b = FakeLeg(PCMU), FakeLeg(PCMU)
    bridge = Bridge(a, b)
    packet = RelayedPacket(bytes(range(160)), 1000, 7, False, False)
    a.receive(packet)
    assert b.sent == [packet]
    assert not bridge.transcoding


def test_pcmu_to_pcma_transcodes_audio_but_not_events() -> None:
    a, b = FakeLeg(PCMU), FakeLeg(PCMA)
    bridge = Bridge(a, b)
    pcm = (np.sin(np.arange(160) / 5) * 8000).astype(np.int16)
    a.receive(RelayedPacket(PCMU.encode(pcm), 0, 1, True, False))
    event = RelayedPacket(b"\x05\x0a\x00\xa0", 0, 1, True, True)
    a.receive(event)
    b.receive(RelayedPacket(PCMA.encode(pcm), 0, 2, False, False))
    assert bridge.transcoding
    # two quantisations (μ-law then A-law) stay within one step of the larger law at this level
    assert np.abs(PCMA.decode(b.sent[0].payload).astype(int) - pcm).max() <= 512
    assert b.sent[0].marker is True
    assert b.sent[1] == event
    assert np.abs(PCMU.decode(a.sent[0].payload).astype(int) - pcm).max() <= 512


def test_close_returns_both_legs_to_their_own_sending_once() -> None:
    a, b = FakeLeg(PCMU), FakeLeg(PCMA)
    bridge = Bridge(a, b)
    assert a.relaying and b.relaying and bridge.other(a) is b
    bridge.close()
    bridge.close()
    assert not a.relaying and not b.relaying and not bridge.open


def test_a_leg_cannot_be_bridged_to_itself() -> None:
    a = FakeLeg(PCMU)
    with pytest.raises(ValueError, match="to itself"):
        Bridge(a, a)
