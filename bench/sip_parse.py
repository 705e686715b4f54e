"""SIP wire-layer benchmark: parse, parse + field access, and parse + serialize per second.

Messages: a typical trunk INVITE with an SDP offer (two Vias, Record-Route, Allow, Supported...)
and its 200 OK with the SDP answer; plus the SDP offer/answer step and a digest check. Best of 5
runs of N iterations each, on one core.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.sip.builders import build_response  # noqa: E402
from ivr.sip.digest import DigestChallenge, make_authorization, verify_authorization  # noqa: E402
from ivr.sip.message import Request, Response  # noqa: E402
from ivr.sip.parser import parse_message  # noqa: E402
from ivr.sip.sdp import SessionDescription, answer_offer  # noqa: E402

SDP = (
    b"v=0\r\no=- 3869147380 3869147380 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n"
    b"m=audio 31544 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:4008001234@203.0.113.5:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK2d4790.1;rport\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.20:5060;received=198.51.100.20;branch=z9hG4bK74bf9\r\n"
    b"Record-Route: <sip:198.51.100.10;lr;ftag=as5e3a2f1c>\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "13800138000" <sip:13800138000@198.51.100.20>;tag=as5e3a2f1c\r\n'
    b"To: <sip:4008001234@203.0.113.5>\r\n"
    b"Contact: <sip:13800138000@198.51.100.20:5060>\r\n"
    b"Call-ID: 6c1b2f7e4b3d2a1e0f9c8b7a@198.51.100.20\r\n"
    b"CSeq: 102 INVITE\r\n"
    b"User-Agent: Carrier-SBC 4.2\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n"
    b"Supported: replaces, timer\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def best_rate(fn: Callable[[], object], n: int) -> float:
    """Operations per second of CPU time (robust on a shared machine), best of 5 runs of n calls."""
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - t0)
    return n / best


def main() -> None:
    invite = parse_message(INVITE)
    assert isinstance(invite, Request)
    offer = SessionDescription.parse(invite.body)
    answer = answer_offer(offer, local_address="203.0.113.5", local_port=40000, session_id=1)
    ok = build_response(invite, 200, to_tag="8f3a2b", body=answer.serialize(), content_type="application/sdp")
    ok.headers.add("Contact", "<sip:ivr@203.0.113.5:5060>")
    OK = ok.serialize()
    assert isinstance(parse_message(OK), Response)

    def fields() -> None:
        m = parse_message(INVITE)
        _ = (m.top_via.branch, m.from_.tag, m.to.tag, m.call_id, m.cseq.seq, m.contact, m.record_route)

    challenge = DigestChallenge("ivr.example.com", "1700000000000.0123456789abcdef0123456789abcdef")
    creds = make_authorization(
        challenge,
        method="REGISTER",
        uri="sip:ivr.example.com",
        username="7001",
        password="pw",
        cnonce="abcdef",
    )
    rows = [
        (f"parse INVITE ({len(INVITE)} B)", best_rate(lambda: parse_message(INVITE), 20000)),
        ("parse INVITE + read Via/From/To/Call-ID/CSeq/Contact/Record-Route", best_rate(fields, 20000)),
        ("parse + serialize INVITE", best_rate(lambda: parse_message(INVITE).serialize(), 20000)),
        (f"parse 200 OK ({len(OK)} B)", best_rate(lambda: parse_message(OK), 20000)),
        ("parse + serialize 200 OK", best_rate(lambda: parse_message(OK).serialize(), 20000)),
        (
            "build 200 OK from INVITE + serialize",
            best_rate(lambda: build_response(invite, 200, to_tag="x").serialize(), 20000),
        ),
        (
            "SDP parse offer + answer + serialize",
            best_rate(
                lambda: answer_offer(
                    SessionDescription.parse(invite.body),
                    local_address="203.0.113.5",
                    local_port=40000,
                    session_id=1,
                ).serialize(),
                10000,
            ),
        ),
        (
            "digest verify (MD5, qop=auth)",
            best_rate(
                lambda: verify_authorization(
                    creds, method="REGISTER", realm="ivr.example.com", password="pw"
                ),
                20000,
            ),
        ),
    ]
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## SIP wire layer: parse / serialize throughput (one core)\n")
    print(
        f"Command: `python -m bench.sip_parse` · machine: {platform.machine()}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()} · {started}\n"
    )
    print("| operation | per second | µs each |\n|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} |")
    per_message_us = (1e6 / rows[2][1] + 1e6 / rows[4][1]) / 2
    per_call_us = 7 * per_message_us + 1e6 / rows[6][1]
    print(
        f"\nOne call's signalling is about 7 messages (INVITE, 100, 180, 200, ACK, BYE, 200) plus one SDP "
        f"answer: about {per_call_us:.0f} µs of CPU, so 100 calls/s take "
        f"{per_call_us * 100 / 1e4:.1f}% of one core in this layer."
    )


if __name__ == "__main__":
    main()
