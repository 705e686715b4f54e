"""A tiny pcap reader for tests: UDP payloads of Ethernet/IPv4 (or Linux cooked) captures."""

from __future__ import annotations

import pathlib
import struct
from dataclasses import dataclass

from ivr.testing import peers


@dataclass(frozen=True)
class UdpDatagram:
    time_s: float
    source_port: int
    destination_port: int
    payload: bytes


def read_udp(path: pathlib.Path) -> list[UdpDatagram]:
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_header = {1: 14, 113: 16}[linktype]  # Ethernet, Linux cooked capture
    out: list[UdpDatagram] = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        source, destination, length = struct.unpack_from("!HHH", udp)
        out.append(
            UdpDatagram(seconds + fraction / (1e9 if nano else 1e6), source, destination, udp[8:length])
        )
    return out


def sipp_pcap(name: str) -> pathlib.Path | None:
    folder = peers.SIPP_PCAPS.path
    return pathlib.Path(folder, name) if folder is not None and pathlib.Path(folder, name).exists() else None
