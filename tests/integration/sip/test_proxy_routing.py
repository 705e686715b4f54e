"""Behind a proxy (issue #25): a raw UDP socket plays a record-routing proxy in front of our user agent.

Record-Route must come back in the 180 and the 200 (RFC 3261 12.1.1), our BYE must go to the proxy with the
route set as Route headers (loose routing), and in-dialog requests the proxy relays (still carrying a Route)
must be taken. A refused TCP connect must fail the call at once (RFC 3261 17.1.4), not after Timer B.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from ivr.sip.message import Request, Response
from ivr.sip.parser import parse_message
from ivr.sip.transport import TransportKind
from ivr.sipua.calls import CallFailed
from ivr.testing.sipharness import Harness, start

pytestmark = pytest.mark.integration

SDP = (
    "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class RawProxy:
    """A UDP socket that sends hand-written requests and reads what comes back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    async def send(self, text: str, port: int) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, text.encode(), ("127.0.0.1", port))

    async def receive(self) -> Request | Response:
        async with asyncio.timeout(5):
            data = await asyncio.get_running_loop().sock_recv(self.sock, 65535)
        return parse_message(data)

    async def until(self, wanted: str) -> Request | Response:
        """The next message whose status or method is `wanted` (skipping the others)."""
        while True:
            message = await self.receive()
            kind = str(message.status) if isinstance(message, Response) else message.method
            if kind == wanted:
                return message


def request(proxy: RawProxy, method: str, *, branch: str, cseq: int, to_tag: str = "", body: str = "",
            number: str = "hangup1", extra: str = "") -> str:
    content = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:{number}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{proxy.port};branch=z9hG4bK-{branch}\r\n"
        f"Record-Route: <sip:127.0.0.1:{proxy.port};lr;ftag=c1>\r\nRecord-Route: <sip:10.9.9.9;lr>\r\n"
        f"From: <sip:caller@10.1.1.1>;tag=c1\r\nTo: <sip:{number}@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: rr-test@10.1.1.1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 69\r\n"
        f"Contact: <sip:caller@10.1.1.1:5099>\r\n{extra}{content}Content-Length: {len(body)}\r\n\r\n{body}"
    )


async def test_record_route_in_responses_and_our_bye_follows_the_route_set(harness: Harness) -> None:
    proxy = RawProxy()
    try:
        await proxy.send(request(proxy, "INVITE", branch="inv", cseq=1, body=SDP), harness.port)
        ringing = await proxy.until("180")
        ok = await proxy.until("200")
        expected = [f"<sip:127.0.0.1:{proxy.port};lr;ftag=c1>", "<sip:10.9.9.9;lr>"]
        assert ringing.headers.get_all("Record-Route") == expected
        assert ok.headers.get_all("Record-Route") == expected
        tag = f";tag={ok.to.tag}"
        # the ACK as the proxy relays it: its own Route entry already removed, the next one left on
        ack = request(proxy, "ACK", branch="ack", cseq=1, to_tag=tag, extra="Route: <sip:10.9.9.9;lr>\r\n")
        await proxy.send(ack, harness.port)
        bye = await proxy.until("BYE")  # `hangup...` hangs up after 0.5 s: through the proxy, not to Contact
        assert isinstance(bye, Request)
        assert bye.headers.get_all("Route") == expected
        assert str(bye.uri) == "sip:caller@10.1.1.1:5099"
    finally:
        proxy.sock.close()


async def test_in_dialog_request_relayed_by_the_proxy_is_answered(harness: Harness) -> None:
    proxy = RawProxy()
    try:
        await proxy.send(request(proxy, "INVITE", branch="inv2", cseq=1, body=SDP, number="100"), harness.port)
        ok = await proxy.until("200")
        tag = f";tag={ok.to.tag}"
        await proxy.send(request(proxy, "ACK", branch="ack2", cseq=1, to_tag=tag, number="100"), harness.port)
        info = request(proxy, "INFO", branch="info2", cseq=2, to_tag=tag, number="100",
                       extra="Route: <sip:10.9.9.9;lr>\r\nContent-Type: application/dtmf-relay\r\n")
        info = info.replace("Content-Length: 0\r\n\r\n", "Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n")
        await proxy.send(info, harness.port)
        reply = await proxy.until("200")
        assert reply.cseq.method == "INFO"
        await proxy.send(request(proxy, "BYE", branch="bye2", cseq=3, to_tag=tag, number="100"), harness.port)
        assert (await proxy.until("200")).cseq.method == "BYE"
    finally:
        proxy.sock.close()


async def test_refused_tcp_connect_fails_the_call_at_once() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there: the connect is refused
    tcp: Harness = await start("127.0.0.1", 0, kind=TransportKind.TCP)
    try:
        call = tcp.ua.invite(f"sip:100@127.0.0.1:{port};transport=tcp", SDP.encode())
        with pytest.raises(CallFailed) as failed:
            async with asyncio.timeout(5):  # Timer B would take 32 s
                await call.answered()
        assert failed.value.status == 503
    finally:
        await tcp.close()
