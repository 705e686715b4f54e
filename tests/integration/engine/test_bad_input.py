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
