"""Start real SIP peers (SIPp, baresip) on free loopback ports, asynchronously, and always stop them."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
import subprocess
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from ivr.sipua import CallLeg, OutgoingCall
from ivr.testing import peers, ports
from ivr.testing.sipharness import Harness

SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"
HOST = "127.0.0.1"

needs_sipp = pytest.mark.skipif(peers.SIPP.missing, reason=peers.SIPP.reason)
needs_baresip = pytest.mark.skipif(peers.BARESIP.missing, reason=peers.BARESIP.reason)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on loopback for UDP and TCP alike, with TCP port+1 free too (SIPp and baresip open
    UDP and TCP on the port; baresip's TLS transport takes the next port up), handed to no other test
    process (see `ivr.testing.ports`)."""
    return ports.free_port(kind, HOST)


def media_port() -> int:
    """SIPp's `-mp`: it binds that port for audio and the one two up for video."""
    return ports.free_port(host=HOST, span=4)


def baresip_rtp_ports() -> int:
    """The first of the 11 ports `BARESIP_CONFIG`'s `rtp_ports` range gives baresip, all ours."""
    return ports.free_port(host=HOST, span=12)


@dataclass(slots=True)
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str

    def explain(self) -> str:
        return (f"sipp exit {self.returncode}\n--- stderr\n{self.stderr[-3000:]}"
                f"\n--- errors\n{self.errors[-3000:]}")


def scenario(name: str, tmp_path: pathlib.Path, **substitutions: str) -> pathlib.Path:
    """A scenario file, with `__KEY__` placeholders replaced when given."""
    path = SCENARIOS / name
    if not substitutions:
        return path
    text = path.read_text()
    for key, value in substitutions.items():
        text = text.replace(f"__{key.upper()}__", value)
    out = tmp_path / name
    out.write_text(text)
    return out


async def run_sipp(scenario_file: pathlib.Path, target_port: int, tmp_path: pathlib.Path, *,
                   service: str = "100", calls: int = 1, rate: float | None = None,
                   extra: Sequence[str] = (), timeout_s: float = 30.0, transport: str = "u1",
                   uas: bool = False, local_port: int | None = None) -> SippResult:
    """Run SIPp to completion against (or, with `uas`, waiting for calls from) 127.0.0.1."""
    error_file = tmp_path / f"sipp-{scenario_file.stem}-errors.log"
    args = [
        "sipp", "-sf", str(scenario_file), "-i", HOST, "-p", str(local_port or free_port()), "-mi", HOST,
        "-mp", str(media_port()), "-t", transport, "-m", str(calls), "-nostdin", "-trace_err",
        "-error_file", str(error_file), "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        "-recv_timeout", "10000", "-s", service,
    ]
    if rate is not None:
        args += ["-r", str(rate)]
    args += list(extra)
    if not uas:
        args.append(f"{HOST}:{target_port}")
    return await _finish(await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    ), error_file, timeout_s + 10, _ports(args))


async def _finish(proc: asyncio.subprocess.Process, error_file: pathlib.Path, timeout_s: float,
                  ports: Sequence[int] = ()) -> SippResult:
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    errors = await asyncio.to_thread(_read_if_exists, error_file)
    if b"Unable to bind" in stderr:  # a rare collision in full runs: say who holds the port, for the next look
        errors += f"\n--- sockets on {list(ports)} now (ss -uatnp)\n" + await asyncio.to_thread(_holders, ports)
    return SippResult(proc.returncode or 0, stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                      errors)


def _ports(args: Sequence[str]) -> list[int]:
    """The ports a SIPp command line binds (`-p`, `-mp`)."""
    return [int(args[i + 1]) for i, arg in enumerate(args[:-1]) if arg in ("-p", "-mp")]


def _holders(ports: Sequence[int]) -> str:
    try:
        listing = subprocess.run(["ss", "-uatnp"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"ss failed: {exc}"
    return "\n".join(line for line in listing.splitlines() if any(f":{p} " in line for p in ports))


def _read_if_exists(path: pathlib.Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@contextlib.asynccontextmanager
async def sipp_uas(scenario_file: pathlib.Path, tmp_path: pathlib.Path, *, timeout_s: float = 20.0
                   ) -> AsyncIterator[tuple[int, asyncio.Task[SippResult]]]:
    """SIPp as a UAS on a free port: yields (port, task finishing with its result); killed on exit."""
    port = free_port()
    error_file = tmp_path / f"sipp-{scenario_file.stem}-errors.log"
    args = [
        "sipp", "-sf", str(scenario_file), "-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(media_port()),
        "-m", "1", "-nostdin", "-trace_err", "-error_file", str(error_file), "-timeout", f"{int(timeout_s)}s",
        "-timeout_error",
    ]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    task = asyncio.ensure_future(_finish(proc, error_file, timeout_s + 10, _ports(args)))
    try:
        yield port, task  # if SIPp is not bound yet, our INVITE's Timer A retransmission reaches it
    finally:
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


BARESIP_CONFIG = """\
poll_method epoll
net_interface {host}
sip_listen {host}:{port}
sip_trans_bsize 128
call_local_timeout 120
call_max_calls 4
audio_player aufile,{tmp}/heard.wav
audio_source aufile,{tmp}/say.wav
audio_alert aufile,{tmp}/alert.wav
audio_srate 8000
audio_channels 1
rtp_ports {rtp_low}-{rtp_high}
rtcp_mux no
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module_tmp uuid.so
module_tmp account.so
module_app contact.so
module_app menu.so
"""


@contextlib.asynccontextmanager
async def baresip(tmp_path: pathlib.Path, *, commands: Sequence[str] = (), auto_answer: bool = False,
                  talk_s: float = 1.0, quit_after_s: int = 20, say: bytes | None = None,
                  record: bool = False, config_extra: str = "", account_params: str = "",
                  ) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """Run baresip with a throw-away config dir; yields (its SIP port, the process); killed on exit.

    No sound card: it plays into a WAV file (`heard.wav`) and "speaks" from another: `say` (8 kHz
    16-bit mono samples) if given, else `talk_s` seconds of silence; aufile ends the call at the
    end of that file. Its media address is loopback (`net_interface`), never the host's own.
    With `record`, the sndfile module writes what it hears to `dump-<peer>-dec.wav` in `tmp_path`
    (baresip 1.0's aufile has no player, so `heard.wav` is never written).
    """
    with wave.open(str(tmp_path / "say.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(say if say is not None else b"\0\0" * int(8000 * talk_s))
    conf = tmp_path / "baresip"
    conf.mkdir(exist_ok=True)
    port, rtp = free_port(), baresip_rtp_ports()
    config = BARESIP_CONFIG.format(host=HOST, port=port, tmp=tmp_path, rtp_low=rtp, rtp_high=rtp + 10)
    if record:
        config += f"module sndfile.so\nsnd_path {tmp_path}\n"
    config += config_extra  # e.g. TLS certificate lines, `module srtp.so`
    (conf / "config").write_text(config)
    answermode = ";answermode=auto" if auto_answer else ""
    (conf / "accounts").write_text(f"<sip:baresip@{HOST}:{port}>;regint=0{answermode}{account_params}\n")
    (conf / "contacts").write_text("")
    args = ["baresip", "-f", str(conf), "-t", str(quit_after_s)]
    for command in commands:
        args += ["-e", command]
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
    try:
        yield port, proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


BARESIP_OFFER = (
    b"v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
)
"""What our harness offers an auto-answering baresip (PCMU and PCMA)."""


async def call_baresip(harness: Harness, port: int) -> tuple[OutgoingCall, CallLeg]:
    """The harness's user agent calls an auto-answering baresip on `port`; returns the call and its answered leg."""
    call = harness.ua.invite(f"sip:baresip@{HOST}:{port}", harness.app.answer_sdp(BARESIP_OFFER))
    async with asyncio.timeout(10):
        leg = await call.answered()
    return call, leg
