"""An `ivr serve` at the network edge: bound to a wildcard or with TCP/TLS listeners, a test certificate,
and a TLS relay that lets a plain-TCP SIPp reach a `tls://` listener.

The engine serves one small flow (a recorded tone, then it waits for keys: the caller hangs up first),
so every request the engine answers rides the caller's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest

from ivr.sip.endpoint import format_hostport
from tests.integration.engine.agents import tone, write_engine_config, write_wav
from tests.integration.engine.conftest import RunningEngine, free_port, start_engine, stop_engine
from tests.integration.protocol.conftest import FLOWS, KEYS_NUMBER
from tests.integration.protocol.peer import PeerRun, run_scenario

SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"
CALLER = "5550100"
TONE_HZ, TONE_S = 1200.0, 1.5
"""The recorded prompts: a pure tone no speech prompt could be mistaken for."""


@dataclasses.dataclass(frozen=True, slots=True)
class PemCertificate:
    """A self-signed certificate for 127.0.0.1 (IP SAN) and its key, PEM files."""

    certificate: pathlib.Path
    key: pathlib.Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> PemCertificate:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return PemCertificate(cert, key)


@contextlib.contextmanager
def edge_engine(tmp: pathlib.Path, *, sip_host: str = "127.0.0.1", flows: Mapping[str, str] | None = None,
                **settings: object) -> Iterator[RunningEngine]:
    """`ivr serve` bound to `sip_host` (UDP, on a free port) with `flows` (stem → YAML; default: the keys
    flow) and config `settings`. Prompts `enter` and `tone` are a recorded 1200 Hz tone."""
    prompts = tmp / "prompts" / "en"
    prompts.mkdir(parents=True)
    for name, seconds in (("enter", 1.0), ("tone", TONE_S)):
        write_wav(prompts / f"{name}.wav", tone(TONE_HZ, seconds, 0.25))
    folder = tmp / "flows"
    folder.mkdir()
    for stem, text in (flows or {"keys": FLOWS["keys"]}).items():
        (folder / f"{stem}.yaml").write_text(text, encoding="utf-8")
    config = write_engine_config(tmp, [], prompts_dir=str(tmp / "prompts"), **settings)
    port = free_port()
    running = start_engine(tmp, "--config", str(config), "--flows", str(folder),
                           "--sip", format_hostport(sip_host, port))
    try:
        yield dataclasses.replace(running, sip_port=port)
    finally:
        stop_engine(running)


async def call_once(tmp: pathlib.Path, target_port: int, *, transport: str = "u1", target: str | None = None,
                    connect_port: int | None = None) -> PeerRun:
    """One SIPp call (INVITE, ACK, BYE after 1 s) to the keys flow; `transport` is SIPp's `-t`.
    `connect_port`: where SIPp actually sends (a relay) when that is not `target_port`."""
    text = (SCENARIOS / "uac_call.xml").read_text()
    text = text.replace("__CALLER__", CALLER).replace("__TARGET__", target or f"127.0.0.1:{target_port}")
    scenario = tmp / f"uac_call-{free_port()}.xml"
    scenario.write_text(text)
    return await run_scenario(scenario, connect_port or target_port, tmp, service=KEYS_NUMBER,
                              extra=["-t", transport])


def header(message: str, name: str) -> str:
    """The first value of header `name` in a SIP message's text ('' if none)."""
    for line in message.split("\n\n", 1)[0].split("\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def sdp_lines(message: str, kind: str) -> list[str]:
    """The body's `kind=` lines (c, o, m...) without the `kind=`."""
    body = message.split("\n\n", 1)[1] if "\n\n" in message else ""
    return [line[2:].strip() for line in body.split("\n") if line.startswith(f"{kind}=")]


@contextlib.asynccontextmanager
async def tls_relay(target_port: int, ca: pathlib.Path) -> AsyncIterator[int]:
    """A local TCP port whose connections are carried over TLS to 127.0.0.1:`target_port`, verifying the
    server against `ca` (what a SIP phone's TLS layer does): SIPp here is built without OpenSSL."""
    context = ssl.create_default_context(cafile=str(ca))

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port, ssl=context)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
