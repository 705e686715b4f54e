from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ivr.media.g711 import PCMA, PCMU
from ivr.media.tones import dtmf_sequence, tone
from ivr.rtp.dtmf import TelephoneEventSender
from ivr.rtp.events import DtmfSource
from ivr.rtp.gate import SourceGate
from ivr.rtp.inbound import MAX_DATAGRAM_BYTES, InboundStream, Received
from ivr.rtp.jitter import JitterBuffer
from ivr.rtp.packet import RtpPacket

PEER = ("192.0.2.10", 4000)
"""The address and port the SDP named."""
NAT = ("192.0.2.10", 61000)
"""The same host behind a NAT that rewrote the port."""
STRANGER = ("203.0.113.66", 4000)


def stream(symmetric: bool = True, **kwargs: object) -> InboundStream:
    options: dict[str, object] = {"telephone_event_pt": 101, "inband_dtmf": False}
    options.update(kwargs)
    gate = SourceGate.opened(PEER, 0.0, symmetric=symmetric, peer_host="198.51.100.7")
    return InboundStream(PCMU, gate=gate, **options)  # type: ignore[arg-type]


def audio_packets(pcm: np.ndarray, *, codec=PCMU, ptime_samples: int = 160, seq0: int = 0, ts0: int = 0):  # type: ignore[no-untyped-def]
    payloads = codec.encode_frames(pcm, ptime_samples)
    return [
        RtpPacket(codec.payload_type, (seq0 + n) & 0xFFFF, ts0 + n * ptime_samples, 42, p).serialize()
        for n, p in enumerate(payloads)
    ]


def receive_all(
    inbound: InboundStream, packets: list[bytes], source=PEER, step_s: float = 0.02
) -> list[Received]:  # type: ignore[no-untyped-def]
    results = []
    for n, data in enumerate(packets):
        got = inbound.receive(data, source, n * step_s)
        if got is not None:
            results.append(got)
    return results


def test_nat_mode_latches_once_to_the_sdp_host_and_never_moves() -> None:
    inbound = stream()
    data = audio_packets(np.zeros(800, np.int16))
    assert inbound.receive(data[0], STRANGER, 0.0) is None  # first, but from a stranger: refused
    first = inbound.receive(data[1], NAT, 0.02)
    assert first is not None and first.latched == NAT
    assert inbound.receive(data[2], PEER, 0.04) is None  # even the SDP's own port, once latched elsewhere
    again = inbound.receive(data[3], NAT, 0.06)
    assert again is not None and again.latched is None
    assert inbound.receive(data[4], ("192.0.2.10", 61002), 9.0) is None  # after silence: no re-latch
    assert inbound.counters.wrong_source == 3
    assert inbound.counters.received == 2


def test_strict_mode_accepts_only_the_sdp_address_and_port() -> None:
    inbound = stream(symmetric=False)
    data = audio_packets(np.zeros(480, np.int16))
    assert inbound.receive(data[0], NAT, 0.0) is None
    got = inbound.receive(data[1], PEER, 0.02)
    assert got is not None and got.latched == PEER
    assert inbound.counters.wrong_source == 1


def test_oversized_datagrams_are_dropped_unread_and_counted() -> None:
    inbound = stream()
    big = RtpPacket(0, 1, 0, 42, bytes(MAX_DATAGRAM_BYTES)).serialize()
    assert inbound.receive(big, PEER, 0.0) is None
    assert inbound.counters.oversize == 1 and inbound.source is None


def test_unknown_payload_types_and_garbage_are_counted_not_raised() -> None:
    inbound = stream()
    assert inbound.receive(RtpPacket(8, 1, 0, 1, PCMA.silence()).serialize(), PEER, 0.0) is None
    assert inbound.receive(b"\x00\x01", PEER, 0.0) is None
    assert inbound.receive(b"\xa0" + bytes(11), PEER, 0.0) is None
    assert inbound.counters.unknown_payload_type == 1
    assert inbound.counters.malformed == 2
    assert inbound.source is None  # nothing valid, nothing latched


def test_audio_is_decoded_only_while_wanted() -> None:
    inbound = stream()
    pcm = tone((1000.0,), 0.2)
    results = receive_all(inbound, audio_packets(pcm))
    assert all(not r.frames for r in results)
    assert inbound.stats.received == 10
    inbound.set_want_audio(True)
    results = receive_all(inbound, audio_packets(pcm, seq0=10, ts0=1600))
    frames = [f for r in results for f in r.frames] + inbound.flush()
    assert len(frames) == 10
    assert np.abs(np.concatenate(frames).astype(int) - PCMU.decode(PCMU.encode(pcm))).max() == 0


def test_thirty_millisecond_packets_come_out_as_160_sample_frames() -> None:
    inbound = stream()
    inbound.set_want_audio(True)
    pcm = tone((500.0,), 0.48)
    results = receive_all(inbound, audio_packets(pcm, ptime_samples=240), step_s=0.03)
    frames = [f for r in results for f in r.frames] + inbound.flush()
    assert {f.size for f in frames} == {160}
    assert np.array_equal(np.concatenate(frames), PCMU.decode(PCMU.encode(pcm)))


def test_timestamp_gaps_from_silence_suppression_become_silence() -> None:
    inbound = stream()
    inbound.set_want_audio(True)
    pcm = np.full(320, 3000, np.int16)
    packets = audio_packets(pcm) + audio_packets(pcm, seq0=2, ts0=320 + 800)  # 100 ms not sent
    results = receive_all(inbound, packets)
    frames = [f for r in results for f in r.frames] + inbound.flush()
    assert len(frames) == 2 + 5 + 2
    assert [int(np.abs(f).max()) > 0 for f in frames] == [True] * 2 + [False] * 5 + [True] * 2


def test_lost_packets_are_concealed_with_silence_frames() -> None:
    inbound = stream()
    inbound.set_want_audio(True)
    packets = audio_packets(np.full(160 * 6, 3000, np.int16))
    del packets[2]
    results = receive_all(inbound, packets)
    frames = [f for r in results for f in r.frames] + inbound.flush()
    assert [int(np.abs(f).max()) > 0 for f in frames] == [True, True, False, True, True, True]
    assert inbound.jitter.stats.lost == 1


def test_rfc4733_keys_come_out_once_with_their_source() -> None:
    inbound = stream()
    packets = []
    for n, digit in enumerate("12"):
        sender = TelephoneEventSender(digit)
        tick = n * 20
        while (event := sender.next_packet(tick * 160)) is not None:
            packets.append(
                RtpPacket(101, len(packets), event.timestamp, 42, event.payload, event.marker).serialize()
            )
            tick += 1
    results = receive_all(inbound, packets)
    assert [k for r in results for k in r.keys] == [("1", DtmfSource.RFC4733), ("2", DtmfSource.RFC4733)]
    assert all(r.is_event for r in results)
    assert inbound.stats.jitter == 0.0  # event timestamps do not count as jitter


def test_inband_keys_are_detected_when_enabled() -> None:
    inbound = stream(telephone_event_pt=None, inband_dtmf=True)
    assert inbound.want_audio
    results = receive_all(inbound, audio_packets(dtmf_sequence("3#", tone_s=0.08, gap_s=0.08)))
    assert [k for r in results for k in r.keys] == [("3", DtmfSource.INBAND), ("#", DtmfSource.INBAND)]
    inbound.set_want_audio(False)
    assert inbound.want_audio  # detection keeps decoding on


class _AlwaysBuffered(JitterBuffer):
    """A jitter buffer without the in-order fast path: every packet is pushed and popped."""

    def release_in_order(self, seq: int, timestamp: int, now: float) -> bool:
        return False


@given(st.lists(st.tuples(st.sampled_from([1, 1, 1, 1, 1, 1, 0, 2, -1, 3]), st.sampled_from([160, 160, 160, 80, 240]),
                          st.sampled_from([0, 0, 0, 0, 1])), max_size=80), st.booleans())
def test_the_in_order_fast_path_decodes_what_the_jitter_buffer_path_does(
    steps: list[tuple[int, int, int]], inband: bool
) -> None:
    """Frames and keys are the same whether a packet takes the fast path (next in order, nothing held) or goes
    through the jitter buffer, whatever the packet sizes, timestamp gaps, reordering and losses."""
    tones = PCMU.encode(dtmf_sequence("159", tone_s=0.1, gap_s=0.06))
    fast, reference = stream(inband_dtmf=inband), stream(inband_dtmf=inband)
    fast.set_want_audio(True)
    reference.set_want_audio(True)
    reference.jitter = _AlwaysBuffered(reference.jitter.config)
    seq, timestamp, now, offset = 100, 5000, 0.0, 0
    for jump, samples, gap_frames in steps:
        seq = (seq + jump) & 0xFFFF
        timestamp = (timestamp + jump * samples + gap_frames * 160) & 0xFFFFFFFF
        now += 0.02
        body = (tones[offset:] + tones)[:samples]
        offset = (offset + samples) % len(tones)
        data = RtpPacket(0, seq, timestamp, 42, body).serialize()
        got, want = fast.receive(data, PEER, now), reference.receive(data, PEER, now)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert [f.tolist() for f in got.frames] == [f.tolist() for f in want.frames]
            assert got.keys == want.keys
    assert [f.tolist() for f in fast.flush()] == [f.tolist() for f in reference.flush()]
