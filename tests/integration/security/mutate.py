"""Seeded mutation of SIP messages and RTP packets for the fuzz test: byte flips, cuts, splices,
duplicated and swapped lines, absurd header values. Deterministic for a given seed."""

from __future__ import annotations

import random
import struct

SIP_SEEDS = (
    "INVITE sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n};rport\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:1390000{n:04d}@127.0.0.1>;tag=f{n}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
    "Call-ID: fuzz-{n}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:{src}>\r\n"
    "Content-Type: application/sdp\r\nContent-Length: {sdp_len}\r\n\r\n{sdp}",
    "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:a1001@127.0.0.1>;tag=r{n}\r\nTo: <sip:a1001@127.0.0.1>\r\nCall-ID: reg-{n}\r\nCSeq: 1 REGISTER\r\n"
    "Contact: <sip:a1001@127.0.0.1:{src}>;expires=60\r\nAuthorization: Digest username=\"a1001\", realm=\"ivr\", "
    "nonce=\"1.2.3\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef\", qop=auth, nc=00000001, cnonce=\"c\"\r\n"
    "Content-Length: 0\r\n\r\n",
    "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:probe@127.0.0.1>;tag=o{n}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt-{n}\r\nCSeq: 7 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n",
    "BYE sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:x@127.0.0.1>;tag=b{n}\r\nTo: <sip:ivr@127.0.0.1>;tag=t{n}\r\nCall-ID: fuzz-{n}@127.0.0.1\r\n"
    "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    "CANCEL sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:x@127.0.0.1>;tag=f{n}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: fuzz-{n}@127.0.0.1\r\n"
    "CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{n}\r\nFrom: <sip:ivr@127.0.0.1>;tag=a{n}\r\n"
    "To: <sip:x@127.0.0.1>;tag=b{n}\r\nCall-ID: out-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
)
SDP = ("v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {rtp} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
ODD_VALUES = (b"", b"-1", b"99999999999999999999999", b"\x00\xff", b"%00", b";;;;", b"<sip:@>", b"\"" * 50,
              b"a" * 5000, b"sip:" + b"x" * 300, b"1 INVITE\r\n\r\n", b"\xf0\x9f\x92\xa9" * 10)


def sip_datagram(rng: random.Random, n: int, *, port: int, src: int, user_weights: tuple[float, float]) -> bytes:
    """One mutated SIP message; INVITEs go to the hotline number with weight user_weights[0]."""
    user = rng.choices(("95519", "00000"), weights=user_weights)[0]
    sdp = SDP.format(n=n, rtp=rng.randrange(1024, 65535))
    text = rng.choice(SIP_SEEDS).format(user=user, port=port, src=src, n=n, sdp=sdp, sdp_len=len(sdp))
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 4)):
        data = _mutate_sip(rng, data)
    return bytes(data[:65000])


def _mutate_sip(rng: random.Random, data: bytearray) -> bytearray:
    kind = rng.randrange(8)
    if not data:
        return bytearray(rng.randbytes(rng.randint(1, 64)))
    i = rng.randrange(len(data))
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # cut a range
        del data[i:i + rng.randint(1, 40)]
    elif kind == 2:  # insert random bytes
        data[i:i] = rng.randbytes(rng.randint(1, 40))
    elif kind == 3:  # duplicate a range
        data[i:i] = data[i:i + rng.randint(1, 200)] * rng.randint(1, 20)
    elif kind == 4:  # truncate
        del data[i:]
    lines = bytes(data).split(b"\r\n")
    if kind == 5 and len(lines) > 2:  # swap two lines
        a, b = rng.randrange(1, len(lines)), rng.randrange(1, len(lines))
        lines[a], lines[b] = lines[b], lines[a]
    elif kind == 6 and len(lines) > 2:  # an absurd header value
        a = rng.randrange(1, len(lines))
        name = lines[a].split(b":", 1)[0]
        lines[a] = name + b": " + rng.choice(ODD_VALUES)
    elif kind == 7 and len(lines) > 2:  # repeat a header many times
        a = rng.randrange(1, len(lines))
        lines[a:a] = [lines[a]] * rng.randint(2, 300)
    return bytearray(b"\r\n".join(lines)) if kind >= 5 else data


def rtp_packet(rng: random.Random, seq: int, ssrc: int) -> bytes:
    """A valid PCMU packet, then mutated (or not: 1 in 5 stay valid so the stream stays latched)."""
    packet = bytearray(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc)
                       + bytes([0xFF]) * 160)
    if rng.random() < 0.2:
        return bytes(packet)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 6)):
            packet[rng.randrange(12)] = rng.randrange(256)
    elif kind == 1:
        del packet[rng.randrange(len(packet)):]
    elif kind == 2:  # CSRC count / extension / padding bits with nothing behind them
        packet[0] = rng.choice((0x8F, 0x90, 0xA0, 0xBF, 0x00, 0xFF))
    elif kind == 3:
        packet[1] = rng.randrange(256)  # any payload type, marker
    elif kind == 4:
        packet += rng.randbytes(rng.randint(1, 3000))  # oversize
    else:
        packet = bytearray(rng.randbytes(rng.randint(0, 200)))
    return bytes(packet)
