"""Drive the Debian `linphonec` console phone (linphone-cli 5.1) as a caller would set it up.

Learnt by trying it: `[sip] sip_port` in the rc file is ignored (the SIP port stays 0 and every call
fails with "No listening point"), so the port is set with the `ports sip N` command; there is no
sound card in a container, so `soundcard use files` and `play <wav>` feed the call from a file (without
a file linphone sends no RTP at all: only its key packets). A line of digits in a call sends them as
keys, by the method the rc file selects: RFC 4733 (`use_rfc2833`), SIP INFO (`use_info`), or, with
both off, dual tones in the audio. IPv6 is on by default: linphone then offers `c=IN IP6 <its global
IPv6 address>` while its packets go out from 127.0.0.1 to a loopback peer (issue 24).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import pathlib
from collections.abc import AsyncIterator

from ivr.testing import peers

LINPHONEC = peers.LINPHONEC


class KeyMethod(enum.Enum):
    RFC4733 = "rfc4733"
    INFO = "info"
    INBAND = "inband"


_RC_KEYS = {
    KeyMethod.RFC4733: "use_rfc2833=1\nuse_info=0\n",
    KeyMethod.INFO: "use_rfc2833=0\nuse_info=1\n",
    KeyMethod.INBAND: "use_rfc2833=0\nuse_info=0\n",
}


class Linphone:
    """One running `linphonec`: write commands, wait for what it prints."""

    def __init__(self, process: asyncio.subprocess.Process, log: pathlib.Path) -> None:
        self.process = process
        self.log = log
        """linphone's own debug log (SDP, RTP statistics)."""
        self.output: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.output.append(raw.decode(errors="replace").rstrip())
            self._changed.set()

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def wait_for(self, text: str, timeout_s: float) -> str:
        """The first line of output (from the start) containing `text`; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while True:
                for line in self.output:
                    if text in line:
                        return line
                self._changed.clear()
                await self._changed.wait()

    async def quit(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError):
                await self.command("terminate")
                await self.command("quit")
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()


@contextlib.asynccontextmanager
async def linphonec(
    folder: pathlib.Path, *, number: str, keys: KeyMethod, sip_port: int, rtp_port: int, ipv6: bool
) -> AsyncIterator[Linphone]:
    """A linphonec calling as `number`, ready to `call`: files for sound, SIP on `sip_port`."""
    rc = folder / "linphonerc"
    text = (
        f"[sip]\ncontact=sip:{number}@127.0.0.1\nsip_tcp_port=-1\nsip_tls_port=-1\n{_RC_KEYS[keys]}"
        f"[rtp]\naudio_rtp_port={rtp_port}\n"
    )
    await asyncio.to_thread(rc.write_text, text)
    log = folder / "linphone.log"
    process = await asyncio.create_subprocess_exec(
        LINPHONEC.require(), "-c", str(rc), "-d", "6", "-l", str(log),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=folder,
    )
    phone = Linphone(process, log)
    try:
        await phone.command("soundcard use files")
        await phone.command(f"ports sip {sip_port}")
        if not ipv6:
            await phone.command("ipv6 disable")
        await phone.wait_for("Using wav files", 10)
        yield phone
    finally:
        await phone.quit()
