"""Bad input over the wire never takes the engine down: malformed requests get a 400 naming the
fault (RFC 4475's invalid messages), garbage is dropped, and the engine keeps answering."""

from __future__ import annotations

import pathlib
import socket

import pytest

from tests.integration.engine.conftest import RunningEngine

pytestmark = pytest.mark.integration

TORTURE = pathlib.Path(__file__).resolve().parents[2] / "data" / "rfc4475"
# Invalid requests RFC 4475 expects a 400-class answer to (responses and garbage are dropped instead).
BAD_REQUESTS = ["badinv01", "clerr", "ltgtruri", "lwsruri", "lwsstart", "trws", "escruri", "baddate",
                "quotbal", "mismatch01", "mismatch02", "multi01", "mcl01", "ncl", "badvers", "insuf"]

OPTIONS = (
    "OPTIONS sip:95519@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-alive-{n}\r\n"
    "From: <sip:probe@127.0.0.1>;tag=probe{n}\r\nTo: <sip:95519@127.0.0.1>\r\n"
    "Call-ID: alive-{n}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def _exchange(sock: socket.socket, engine: RunningEngine, data: bytes) -> bytes | None:
    sock.sendto(data, ("127.0.0.1", engine.sip_port))
    try:
        reply, _ = sock.recvfrom(65535)
    except TimeoutError:
        return None
    return reply


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_malformed_request_gets_a_4xx_and_the_engine_keeps_answering(engine: RunningEngine, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3.0)
        reply = _exchange(sock, engine, (TORTURE / f"{name}.dat").read_bytes())
        assert reply is not None, f"no answer to {name}"
        status_line = reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        code = int(status_line.split()[1])
        assert 400 <= code < 500 or code == 505, status_line
        assert len(status_line.split(" ", 2)[2]) > 3, "the reason phrase says what was wrong"
        sock.sendto(b"\x00\xff garbage that is not SIP at all \r\n\r\n", ("127.0.0.1", engine.sip_port))
        port = sock.getsockname()[1]
        alive = _exchange(sock, engine, OPTIONS.format(port=port, n=name).encode())
    assert engine.process.poll() is None, "the engine died"
    assert alive is not None and alive.startswith(b"SIP/2.0 200"), alive


INVITE = (
    "INVITE sip:95519@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-dup-{branch}\r\n"
    "From: <sip:13700000999@127.0.0.1>;tag={tag}\r\nTo: <sip:95519@127.0.0.1>\r\n"
    "Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
    "Contact: <sip:13700000999@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{sdp}"
)
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def _final(sock: socket.socket, branch: str) -> bytes:
    """The first final (non-1xx) response the engine sends for the INVITE with `branch`."""
    while True:
        reply, _ = sock.recvfrom(65535)
        if f"z9hG4bK-dup-{branch}".encode() in reply and not reply.startswith(b"SIP/2.0 1"):
            return reply


def _status(reply: bytes) -> int:
    return int(reply.split(b"\r\n", 1)[0].split()[1])


def _in_dialog(method: str, ok: bytes, port: int, call_id: str, cseq: int) -> bytes:
    """An ACK or BYE in the dialog the 200 `ok` made (its To carries the engine's tag)."""
    to = next(line for line in ok.decode().split("\r\n") if line.lower().startswith("to:"))
    return (f"{method} sip:95519@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-dup-{method}\r\n"
            f"From: <sip:13700000999@127.0.0.1>;tag=first\r\n{to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def test_a_second_invite_reusing_a_live_call_id_gets_482(engine: RunningEngine) -> None:
    """Issue 15: calls are keyed by dialog, so a Call-ID published in /api/calls cannot be reused by
    another INVITE (another tag, another branch) to take over a caller's record or slip past max_calls."""
    call_id = f"victim-{engine.sip_port}@127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        sock.bind(("127.0.0.1", 0))
        rtp.bind(("127.0.0.1", 0))
        sock.settimeout(10.0)
        port, sdp = sock.getsockname()[1], SDP.format(rtp=rtp.getsockname()[1])

        def invite(tag: str, branch: str) -> bytes:
            return INVITE.format(port=port, branch=branch, tag=tag, call_id=call_id, length=len(sdp), sdp=sdp).encode()

        sock.sendto(invite("first", "1"), ("127.0.0.1", engine.sip_port))
        ok = _final(sock, "1")
        assert _status(ok) == 200, "the first call is answered"
        sock.sendto(_in_dialog("ACK", ok, port, call_id, 1), ("127.0.0.1", engine.sip_port))
        sock.sendto(invite("second", "2"), ("127.0.0.1", engine.sip_port))
        assert _status(_final(sock, "2")) == 482
        sock.sendto(_in_dialog("BYE", ok, port, call_id, 2), ("127.0.0.1", engine.sip_port))
        assert _status(_final(sock, "BYE")) == 200, "the first call is still the engine's, and ends"
