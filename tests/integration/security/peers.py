"""Helpers for the security tests: an engine with a trusted trunk list, a legitimate agent's REGISTER,
and SIPVicious run as the attacker."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence

from ivr.sip.digest import DigestChallenge, make_authorization
from ivr.sip.message import Response
from ivr.sip.parser import parse_message
from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine

ATTACKER = "127.0.0.1"
"""Untrusted: not in the engine's trunks (the engine itself listens on 127.0.0.1 too)."""
TRUNK = "127.0.0.2"
"""The one trusted source (`trunks: [127.0.0.2/32]`)."""
AGENT_PHONE = "127.0.0.3"
"""A legitimate agent's softphone: untrusted for INVITE, as every phone on the internet is."""
AGENT, AGENT_PASSWORD = "a1001", "demo-a1001-Kq7"
"""From the demo agents file the engine loads by default."""


@contextlib.contextmanager
def secured_engine(tmp: pathlib.Path, *extra: str, trunks: str = f"{TRUNK}/32",
                   errors_expected: Sequence[str] = ()) -> Iterator[RunningEngine]:
    engine = start_engine(tmp, "--set", f"trunks={trunks}", *extra)
    try:
        yield engine
    finally:
        stop_engine(engine, errors_expected=errors_expected)


class RegisterClient:
    """Hand-made REGISTERs from `bind` (one UDP socket, one Call-ID unless told otherwise)."""

    def __init__(self, engine: RunningEngine, bind: str = AGENT_PHONE, timeout_s: float = 3.0) -> None:
        self.engine, self.bind = engine, bind
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.sock.settimeout(timeout_s)
        self.port = self.sock.getsockname()[1]
        self.uri = f"sip:127.0.0.1:{engine.sip_port}"
        self.call_id = secrets.token_hex(8)

    def send(self, user: str, cseq: int, authorization: str | None = None, *, call_id: str | None = None,
             contact: str | None = None, uri: str | None = None) -> Response | None:
        lines = [f"REGISTER {uri or self.uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.bind}:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
                 f"From: <sip:{user}@127.0.0.1>;tag={secrets.token_hex(4)}", f"To: <sip:{user}@127.0.0.1>",
                 f"Call-ID: {call_id or self.call_id}", f"CSeq: {cseq} REGISTER",
                 f"Contact: {contact or f'<sip:{user}@{self.bind}:{self.port}>'}",
                 "Expires: 300", "Max-Forwards: 70", "User-Agent: security-test-phone"]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        self.sock.sendto(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode(),
                         ("127.0.0.1", self.engine.sip_port))
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        message = parse_message(data)
        assert isinstance(message, Response)
        return message

    def answer(self, user: str, password: str, algorithm: str = "SHA-256") -> tuple[str, int]:
        """Challenge then answer; (the Authorization sent, the final status; 0: no answer)."""
        first = self.send(user, 1)
        if first is None or first.status != 401:
            return "", first.status if first is not None else 0
        (challenge,) = [c for c in map(DigestChallenge.parse, first.headers.get_all("WWW-Authenticate"))
                        if c.algorithm == algorithm]
        creds = str(make_authorization(challenge, method="REGISTER", uri=self.uri, username=user,
                                       password=password, cnonce=secrets.token_hex(8)))
        final = self.send(user, 2, creds)
        return creds, final.status if final is not None else 0

    def close(self) -> None:
        self.sock.close()


def register(engine: RunningEngine, *, user: str = AGENT, password: str = AGENT_PASSWORD, bind: str = AGENT_PHONE,
             algorithm: str = "SHA-256") -> int:
    """One REGISTER with its digest answer from `bind`; the final status (0: no answer)."""
    client = RegisterClient(engine, bind)
    try:
        return client.answer(user, password, algorithm)[1]
    finally:
        client.close()


def sipvicious(tool: str, *args: str, cwd: pathlib.Path, timeout_s: float = 120.0) -> str:
    """Run a SIPVicious tool (svmap, svwar, svcrack), unmodified, and return its output. HOME is `cwd`: the
    tools keep their session files under ~/.sipvicious."""
    done = subprocess.run([sys.executable, "-c", f"from sipvicious.{tool} import main; main()", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ, HOME=str(cwd)))
    return done.stdout + done.stderr


class RawCall:
    """A call placed with hand-made SIP from `bind`, its RTP from a socket we control (for fuzzing)."""

    def __init__(self, engine: RunningEngine, bind: str = ATTACKER, user: str = "95519") -> None:
        self.engine = engine
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((bind, 0))
        self.sip.settimeout(5.0)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((bind, 0))
        self.bind, self.user = bind, user
        self.call_id = f"raw-{secrets.token_hex(6)}"
        self.tag = secrets.token_hex(4)
        self.to_tag = ""
        self.remote_rtp: tuple[str, int] | None = None

    def _send(self, method: str, cseq: int, body: str = "", to_tag: str = "") -> None:
        port = self.sip.getsockname()[1]
        lines = [f"{method} sip:{self.user}@127.0.0.1:{self.engine.sip_port} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.bind}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
                 "Max-Forwards: 70", f"From: <sip:13700000000@{self.bind}>;tag={self.tag}",
                 f"To: <sip:{self.user}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
                 f"Call-ID: {self.call_id}", f"CSeq: {cseq} {'INVITE' if method == 'ACK' else method}",
                 f"Contact: <sip:caller@{self.bind}:{port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        self.sip.sendto("\r\n".join(lines).encode(), ("127.0.0.1", self.engine.sip_port))

    def invite(self) -> int:
        """INVITE, wait for the final answer, ACK a 2xx; the final status."""
        from ivr.sip.sdp import SessionDescription, make_offer, negotiated_codec

        offer = make_offer(local_address=self.bind, local_port=self.rtp.getsockname()[1], session_id=1)
        self._send("INVITE", 1, offer.serialize().decode())
        while True:
            data, _ = self.sip.recvfrom(65535)
            message = parse_message(data)
            if isinstance(message, Response) and message.cseq.method == "INVITE" and message.status >= 200:
                break
        if message.status < 300:
            self.to_tag = message.to.tag or ""
            codec = negotiated_codec(SessionDescription.parse(message.body))
            self.remote_rtp = (codec.remote_address, codec.remote_port)
            self._send("ACK", 1, to_tag=self.to_tag)
        return message.status

    def bye(self) -> None:
        self._send("BYE", 2, to_tag=self.to_tag)

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()
