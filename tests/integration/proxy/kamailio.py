"""A real Kamailio (deploy/kamailio/kamailio.cfg) in front of engines, on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ivr.testing import peers
from tests.integration.sip.sip_peers import HOST, free_port

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
READY_TIMEOUT_S = 20.0


@dataclass(slots=True)
class Proxy:
    port: int
    log: pathlib.Path
    process: asyncio.subprocess.Process

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _options_through(port: int) -> bytes | None:
    """An OPTIONS sent to the proxy, relayed to an engine: the final response's start line, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(1.0)
        local = sock.getsockname()[1]
        branch = "z9hG4bK-ready-" + secrets.token_hex(6)
        request = (
            f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch={branch};rport\r\n"
            f"From: <sip:probe@{HOST}:{local}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:ping@{HOST}:{port}>\r\n"
            f"Call-ID: ready-{secrets.token_hex(8)}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (HOST, port))
        try:
            while True:
                data = sock.recv(65535)
                first = data.split(b"\r\n", 1)[0]
                if not first.startswith(b"SIP/2.0 1"):
                    return first
        except OSError:
            return None


@contextlib.asynccontextmanager
async def kamailio_front(tmp: pathlib.Path, engine_ports: Sequence[int]) -> AsyncIterator[Proxy]:
    """Kamailio with `engine_ports` (on loopback) as dispatcher set 1; ready once an OPTIONS sent to it
    comes back 200 from an engine. Killed on exit."""
    folder = tmp / "kamailio"
    folder.mkdir(exist_ok=True)
    destinations = folder / "dispatcher.list"
    destinations.write_text("".join(f"1 sip:{HOST}:{p}\n" for p in engine_ports))
    port = free_port()
    log = folder / "kamailio.log"
    process = await asyncio.create_subprocess_exec(
        peers.KAMAILIO.require(), "-f", str(CONFIG), "-DD", "-E", "-m", "32", "-M", "4", "-Y", str(folder),
        "-A", f"LISTEN=udp:{HOST}:{port}", "-A", f'DISPATCHER_LIST="{destinations}"',
        stdin=asyncio.subprocess.DEVNULL, stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT, cwd=folder,
    )
    proxy = Proxy(port, log, process)
    try:
        answer = None
        async with asyncio.timeout(READY_TIMEOUT_S):
            while answer != b"SIP/2.0 200 OK":
                if process.returncode is not None:
                    raise AssertionError(f"kamailio exited with {process.returncode}:\n{proxy.output()[-3000:]}")
                answer = await asyncio.to_thread(_options_through, port)
        yield proxy
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
