"""SIP over TCP against the running engine's `tcp://` listener, with the stream cut where a phone's or a
proxy's TCP stack may cut it (RFC 3261 18.3: the receiver frames messages by Content-Length, whatever
the segments).

A raw socket plays the caller, since no SIP program lets a test choose its segments: an INVITE cut into
pieces inside the request line, inside a header, between the two CRLFs that end the headers and one
byte short of its body is answered only once whole, and exactly once; an ACK and a BYE (a CRLF
keep-alive between them) in one segment are both taken; two INVITEs in one segment are two calls,
answered each on its own, and their BYEs coalesced likewise end both. Responses are read by a framer
written here, not the engine's, and the engine's records say every call was answered and ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from tests.integration.edge.conftest import edge_engine
from tests.integration.engine.conftest import RunningEngine, free_port
from tests.integration.protocol.conftest import KEYS_NUMBER, finished_call, fresh_number

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class TcpEngine:
    engine: RunningEngine
    tcp_port: int


@pytest.fixture(scope="module")
def tcp_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TcpEngine]:
    tcp_port = free_port()
    with edge_engine(tmp_path_factory.mktemp("tcp"), listen=[f"tcp://{HOST}:{tcp_port}"]) as engine:
        yield TcpEngine(engine, tcp_port)


@dataclass(frozen=True, slots=True)
class Message:
    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3}) ", self.start_line)
        return int(match.group(1)) if match else None

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("CSeq") or "0 ?").split()
        return int(number), method


class Phone:
    """A caller on one TCP connection to the engine: sends bytes as told, reads whole messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tcp_port: int) -> None:
        self.reader, self.writer, self.tcp_port = reader, writer, tcp_port
        self.local_port = int(writer.get_extra_info("sockname")[1])
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the engine's RTP goes
        self.rtp.bind((HOST, 0))
        self.rtp_port = int(self.rtp.getsockname()[1])

    async def send(self, *segments: bytes, gap_s: float = 0.2) -> None:
        """Each segment in its own write (TCP_NODELAY), `gap_s` apart: separate segments on the wire."""
        for index, segment in enumerate(segments):
            if index:
                await asyncio.sleep(gap_s)  # the stimulus itself: give each piece its own segment
            self.writer.write(segment)
            await self.writer.drain()

    async def read(self, timeout_s: float = 15.0) -> Message:
        """The next whole message, framed by Content-Length (a framer of this test's own)."""
        async with asyncio.timeout(timeout_s):
            head = await self.reader.readuntil(b"\r\n\r\n")
            while head.startswith(b"\r\n"):  # keep-alive CRLFs before a message
                head = head[2:]
            lines = head.decode().split("\r\n")[:-2]
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
            message = Message(lines[0], headers, b"")
            length = int(message.header("Content-Length") or message.header("l") or 0)
            body = await self.reader.readexactly(length) if length else b""
            return Message(lines[0], headers, body)

    async def final(self, call_id: str, method: str) -> Message:
        """The final response to our `method` on `call_id` (provisionals, and other calls' messages read
        past on the way, are dropped: a test that cares reads them itself)."""
        while True:
            message = await self.read()
            if (message.header("Call-ID") == call_id and message.cseq[1] == method
                    and (message.status or 0) >= 200):
                return message

    def close(self) -> None:
        self.writer.close()
        self.rtp.close()


@contextlib.asynccontextmanager
async def phone(tcp: TcpEngine) -> AsyncIterator[Phone]:
    reader, writer = await asyncio.open_connection(HOST, tcp.tcp_port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connected = Phone(reader, writer, tcp.tcp_port)
    try:
        yield connected
    finally:
        connected.close()


@dataclass(slots=True)
class Dialog:
    """One call placed over the phone's connection: what its requests need to say."""

    phone: Phone
    caller: str
    call_id: str
    tag: str
    to_tag: str = ""

    @classmethod
    def new(cls, phone: Phone, caller: str) -> Dialog:
        return cls(phone, caller, f"{uuid.uuid4().hex}@tcp-test", uuid.uuid4().hex[:10])

    def request(self, method: str, cseq: int, body: bytes = b"") -> bytes:
        target = f"sip:{KEYS_NUMBER}@{HOST}:{self.phone.tcp_port};transport=tcp"
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        lines = [
            f"{method} {target} SIP/2.0",
            f"Via: SIP/2.0/TCP {HOST}:{self.phone.local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]}",
            "Max-Forwards: 70",
            f"From: <sip:{self.caller}@{HOST}>;tag={self.tag}",
            f"To: <sip:{KEYS_NUMBER}@{HOST}>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.caller}@{HOST}:{self.phone.local_port};transport=tcp>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def invite(self) -> bytes:
        sdp = (f"v=0\r\no=tcp 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
               f"m=audio {self.phone.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
        return self.request("INVITE", 1, sdp.encode())

    def answered(self, ok: Message) -> None:
        assert ok.status == 200, ok.start_line
        match = re.search(r";\s*tag=([^;>\s]+)", ok.header("To") or "")
        assert match, ok.headers
        self.to_tag = match.group(1)


def cut(message: bytes) -> list[bytes]:
    """`message` in five pieces: inside the request line, inside a header, between the two CRLFs that
    end the headers, and one byte short of the end of the body."""
    blank = message.index(b"\r\n\r\n")
    via = message.index(b"Via:") + 10
    points = [3, via, blank + 2, len(message) - 1]
    return [message[a:b] for a, b in zip([0, *points], [*points, len(message)], strict=True)]


async def test_an_invite_cut_into_segments_is_answered_once_whole(tcp_engine: TcpEngine) -> None:
    async with phone(tcp_engine) as caller:
        dialog = Dialog.new(caller, fresh_number("1370019"))
        *head, last = cut(dialog.invite())
        await caller.send(*head)
        with pytest.raises(TimeoutError):  # one byte of the body missing: nothing may be answered yet
            await caller.read(timeout_s=1.0)
        await caller.send(last)
        ok = await caller.final(dialog.call_id, "INVITE")
        dialog.answered(ok)
        assert b"m=audio" in ok.body and ok.header("Content-Type") == "application/sdp"
        assert (ok.header("Contact") or "").endswith("transport=tcp>"), ok.headers
        # ACK, a CRLF keep-alive and the BYE, in one segment: both requests are taken.
        await caller.send(dialog.request("ACK", 1) + b"\r\n\r\n" + dialog.request("BYE", 2))
        bye_ok = await caller.final(dialog.call_id, "BYE")
        assert bye_ok.status == 200, bye_ok.start_line
    detail = await finished_call(tcp_engine.engine, dialog.caller)
    assert detail["record"]["call_id"] == dialog.call_id and not detail["in_progress"]
    calls = tcp_engine.engine.get(f"/api/calls?caller={dialog.caller}")["calls"]
    assert len(calls) == 1, f"one INVITE, one call: {calls}"


async def test_two_calls_in_one_segment_are_each_answered_and_ended(tcp_engine: TcpEngine) -> None:
    async with phone(tcp_engine) as caller:
        first, second = Dialog.new(caller, fresh_number("1370029")), Dialog.new(caller, fresh_number("1370039"))
        await caller.send(first.invite() + second.invite())
        finals: dict[str, Message] = {}
        while len(finals) < 2:
            message = await caller.read()
            if message.cseq[1] == "INVITE" and (message.status or 0) >= 200:
                finals.setdefault(message.header("Call-ID") or "", message)
        first.answered(finals[first.call_id])
        second.answered(finals[second.call_id])
        await caller.send(first.request("ACK", 1) + second.request("ACK", 1)
                          + first.request("BYE", 2) + second.request("BYE", 2))
        ended: dict[str, int | None] = {}
        while len(ended) < 2:
            message = await caller.read()
            if message.cseq[1] == "BYE":
                ended[message.header("Call-ID") or ""] = message.status
        assert ended == {first.call_id: 200, second.call_id: 200}
    for dialog in (first, second):
        detail = await finished_call(tcp_engine.engine, dialog.caller)
        assert detail["record"]["call_id"] == dialog.call_id and not detail["in_progress"]
