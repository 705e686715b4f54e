"""`SipTransport.share_port` (`ivr serve --workers`, issue 22): what arrives on the node's shared port is
answered from it (RFC 3581); what arrives on the worker's own port, and every request the worker sends,
uses the worker's own port, the one in its Via and Contact. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ivr.clock import LoopClock
from ivr.sip.transport import SipTransport
from ivr.sipua.useragent import UserAgent
from ivr.testing.ports import free_port

pytestmark = pytest.mark.integration

OPTIONS = (
    "OPTIONS sip:node@127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{peer};branch=z9hG4bK-{branch};rport\r\n"
    "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:node@127.0.0.1>\r\n"
    "Call-ID: probe-{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


async def _ask(peer: socket.socket, port: int, branch: str) -> tuple[bytes, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    message = OPTIONS.format(port=port, peer=peer.getsockname()[1], branch=branch).encode()
    await loop.sock_sendto(peer, message, ("127.0.0.1", port))
    async with asyncio.timeout(5):
        data, source = await loop.sock_recvfrom(peer, 65535)
    return data, source


async def test_answers_leave_from_the_port_the_request_came_to_and_requests_from_our_own() -> None:
    transport = await SipTransport.open("127.0.0.1", 0)
    own_port = transport.local_address[1]
    shared_port = free_port()
    await transport.share_port("127.0.0.1", shared_port)
    ua = UserAgent(transport, LoopClock(), user="node")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    try:
        answer, source = await _ask(peer, shared_port, "a")
        assert answer.startswith(b"SIP/2.0 200") and source[1] == shared_port
        answer, source = await _ask(peer, own_port, "b")
        assert answer.startswith(b"SIP/2.0 200") and source[1] == own_port
        answer, source = await _ask(peer, shared_port, "c")
        assert source[1] == shared_port
        ping = asyncio.ensure_future(ua.options(f"sip:probe@127.0.0.1:{peer.getsockname()[1]}"))
        async with asyncio.timeout(5):
            request, source = await asyncio.get_running_loop().sock_recvfrom(peer, 65535)
        assert request.startswith(b"OPTIONS ") and source[1] == own_port
        assert f"127.0.0.1:{own_port};branch=".encode() in request  # our Via names our own port
        ping.cancel()
    finally:
        peer.close()
        await ua.close()
        await transport.close()


async def test_workers_bind_the_shared_port_together() -> None:
    shared_port = free_port()
    first = await SipTransport.open("127.0.0.1", 0)
    second = await SipTransport.open("127.0.0.1", 0)
    try:
        await first.share_port("127.0.0.1", shared_port)
        await second.share_port("127.0.0.1", shared_port)  # SO_REUSEPORT: no "address in use"
    finally:
        await first.close()
        await second.close()
