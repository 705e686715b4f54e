"""A caller's audio as a pcap of RTP packets, for SIPp's `play_pcap_audio` (bench.sipp_caller).

Pure: G.711 payloads in, the bytes of a classic pcap file out (libpcap format, microsecond timestamps,
Ethernet link type, IPv4 + UDP + RTP, checksums filled in), so nothing is downloaded or captured to build
it. SIPp replays the packets at their capture times and rewrites only the UDP ports and checksum (the
port of the first packet becomes the callee's media port from its SDP); the RTP header, sequence
numbers, timestamps and SSRC go out exactly as written here, so one pcap is one caller's whole stream.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PCAP_MAGIC_US = 0xA1B2C3D4
"""Classic pcap, microsecond timestamps (read back by tcpdump, tshark, libpcap: SIPp)."""
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
RTP_HEADER = struct.Struct("!BBHII")
MAX_PACKETS = 200_000
"""About an hour of 20 ms frames: the bound on one pcap (a bench clip is ~40 s, 2,100 packets)."""


@dataclass(slots=True, frozen=True)
class RtpStream:
    """The fixed fields of one RTP stream as a phone would send it."""

    payload_type: int
    """0 for PCMU, 8 for PCMA."""
    ssrc: int
    first_sequence: int
    first_timestamp: int
    samples_per_packet: int = 160
    """20 ms at 8 kHz."""
    rate_hz: int = 8000


@dataclass(slots=True, frozen=True)
class Endpoints:
    """Addresses written into the capture; SIPp replaces the ports (and the kernel the addresses) on replay."""

    source_ip: str = "127.0.0.1"
    source_port: int = 6000
    destination_ip: str = "127.0.0.1"
    destination_port: int = 6000


def rtp_packets(stream: RtpStream, payloads: Sequence[bytes]) -> list[tuple[float, bytes]]:
    """(seconds from the first packet, RTP packet) for each payload, one every packet time, marker on the first."""
    if len(payloads) > MAX_PACKETS:
        raise ValueError(f"{len(payloads)} RTP packets: a pcap holds at most {MAX_PACKETS}")
    step_s = stream.samples_per_packet / stream.rate_hz
    out = []
    for index, payload in enumerate(payloads):
        marker = 0x80 if index == 0 else 0
        header = RTP_HEADER.pack(0x80, marker | stream.payload_type, (stream.first_sequence + index) & 0xFFFF,
                                 (stream.first_timestamp + index * stream.samples_per_packet) & 0xFFFFFFFF,
                                 stream.ssrc)
        out.append((index * step_s, header + payload))
    return out


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(address: str) -> bytes:
    parts = [int(p) for p in address.split(".")]
    if len(parts) != 4 or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"{address!r} is not an IPv4 address")
    return bytes(parts)


def udp_frame(payload: bytes, ends: Endpoints, ident: int) -> bytes:
    """One Ethernet frame carrying `payload` in an IPv4 UDP datagram, both checksums computed."""
    source, destination = _ipv4(ends.source_ip), _ipv4(ends.destination_ip)
    udp_length = 8 + len(payload)
    pseudo = source + destination + struct.pack("!BBH", 0, IPPROTO_UDP, udp_length)
    udp_header = struct.pack("!HHHH", ends.source_port, ends.destination_port, udp_length, 0)
    udp_sum = _checksum(pseudo + udp_header + payload) or 0xFFFF  # 0 means "no checksum" in UDP
    udp = struct.pack("!HHHH", ends.source_port, ends.destination_port, udp_length, udp_sum) + payload
    ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, IPPROTO_UDP, 0,
                            source, destination)
    ip_header = ip_header[:10] + struct.pack("!H", _checksum(ip_header)) + ip_header[12:]
    ethernet = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ETHERTYPE_IPV4)
    return ethernet + ip_header + udp


def pcap_bytes(packets: Iterable[tuple[float, bytes]], ends: Endpoints = Endpoints()) -> bytes:
    """A classic pcap file of `packets` ((seconds, UDP payload)) sent from `ends.source` to `ends.destination`."""
    chunks = [struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)]
    for ident, (at_s, payload) in enumerate(packets):
        frame = udp_frame(payload, ends, ident)
        micros = round(at_s * 1_000_000)
        chunks.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
        chunks.append(frame)
    return b"".join(chunks)


__all__ = ["Endpoints", "RtpStream", "pcap_bytes", "rtp_packets", "udp_frame"]
