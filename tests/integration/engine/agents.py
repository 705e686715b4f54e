"""Human agents for live engine tests: ACD config files, and baresip softphones that log in by REGISTER.

A `BaresipAgent` is a real softphone with no sound card: it registers with digest auth to the
engine (which logs the agent in), answers (or just rings, when `auto_answer` is off), "speaks" a
WAV file through baresip's aufile source and records what it hears into another. Its SIP trace
(`baresip -s`) is kept, so a test can read the INVITE the engine sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
import wave
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import yaml
from numpy.typing import NDArray

from tests.integration.sip.sip_peers import BARESIP_CONFIG, HOST, free_port

RATE_HZ = 8000


@dataclass(slots=True, frozen=True)
class AgentSpec:
    agent_id: str
    skills: Mapping[str, int]
    dialects: tuple[str, ...] = ("cmn", "en")
    site: str = "beijing"
    wrap_up_s: float = 1.0

    @property
    def password(self) -> str:
        return f"pw-{self.agent_id}-Zq8"


QUEUE_IDS = ("claims", "service", "complaints", "general", "elderly")
"""Every queue flows/hotline.yaml can send a caller to."""


def write_engine_config(
    tmp: pathlib.Path,
    agents: Sequence[AgentSpec],
    queues: Mapping[str, Mapping[str, object]] | None = None,
    *,
    defaults: Mapping[str, object] | None = None,
    **settings: object,
) -> pathlib.Path:
    """agents.yaml, queues.yaml and the engine's config.yaml naming them; returns config.yaml.

    Every hotline queue exists (skill = its name, longest-idle, join_empty); `queues` overrides keys
    per queue. `settings` are further EngineConfig keys (acd_backend, node_id, callback_uri_template...).
    """
    agents_doc = {
        "sites": [{"id": "beijing", "region": "north", "central": True},
                  {"id": "guangzhou", "region": "south"}],
        "agents": [
            {"id": a.agent_id, "sip": {"username": a.agent_id, "password": a.password}, "site": a.site,
             "skills": dict(a.skills), "dialects": list(a.dialects), "wrap_up_s": a.wrap_up_s}
            for a in agents
        ],
    }
    queue_list = []
    for queue_id in QUEUE_IDS:
        queue: dict[str, object] = {"id": queue_id, "skill": queue_id, "strategy": "longest-idle",
                                    "join_empty": True, "max_wait_s": 120, "overflow": "goodbye"}
        queue.update((queues or {}).get(queue_id, {}))
        queue_list.append(queue)
    queues_doc = {
        "defaults": {"ring_timeout_s": 5, "max_no_answer": 3, "retry_after_s": 30, "widen_after_s": 60,
                     "handle_time_s": 60, "announce_every_s": 60, **(defaults or {})},
        "queues": queue_list,
    }
    (tmp / "agents.yaml").write_text(yaml.safe_dump(agents_doc, allow_unicode=True))
    (tmp / "queues.yaml").write_text(yaml.safe_dump(queues_doc, allow_unicode=True))
    config = {"agents_file": str(tmp / "agents.yaml"), "queues_file": str(tmp / "queues.yaml"), **settings}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tone(frequency_hz: float, seconds: float, amplitude: float = 0.3) -> NDArray[np.int16]:
    t = np.arange(int(RATE_HZ * seconds)) / RATE_HZ
    return (np.sin(2 * np.pi * frequency_hz * t) * amplitude * 32767).astype(np.int16)


def write_wav(path: pathlib.Path, samples: NDArray[np.int16]) -> pathlib.Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE_HZ)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: pathlib.Path) -> NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE_HZ and wav.getnchannels() == 1, f"{path}: expected 8 kHz mono"
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


@dataclass(slots=True)
class BaresipAgent:
    """A running baresip registered as `spec.agent_id`; see the module docstring."""

    spec: AgentSpec
    folder: pathlib.Path
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def heard_wav(self) -> pathlib.Path:
        return self.folder / "heard.wav"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        with (self.folder / "baresip.log").open("w", encoding="utf-8") as log:
            async for raw in self.process.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                self.lines.append(line)
                log.write(line + "\n")
                self._changed.set()

    async def expect(self, pattern: str, timeout_s: float = 10.0) -> re.Match[str]:
        """Wait until baresip's output matches `pattern` (a regex); the first match."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    match = regex.search(self.output)
                    if match is not None:
                        return match
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"baresip agent {self.spec.agent_id}: no {pattern!r} in {timeout_s} s:\n{self.output[-3000:]}"
            ) from None

    def invites(self) -> list[str]:
        """The INVITE requests baresip received, as its SIP trace printed them."""
        messages = re.split(r"\n(?=\S+ \S+ SIP/2\.0|SIP/2\.0 \d{3})", self.output)
        return [m for m in messages if re.match(r"INVITE \S+ SIP/2\.0", m.lstrip())]


def invite_headers(invite: str) -> dict[str, str]:
    """Header name (lower case) → value, of one traced request."""
    headers: dict[str, str] = {}
    for line in invite.splitlines()[1:]:
        if not line.strip():
            break
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


@contextlib.asynccontextmanager
async def baresip_agent(
    tmp: pathlib.Path, spec: AgentSpec, engine_sip_port: int, *, auto_answer: bool = True,
    says: NDArray[np.int16] | None = None, quit_after_s: int = 120,
) -> AsyncIterator[BaresipAgent]:
    """Start baresip as agent `spec`, registered (digest) with the engine at `engine_sip_port`.

    It speaks `says` (default: 60 s of silence) once a call is up, and records into heard.wav.
    """
    folder = tmp / f"agent-{spec.agent_id}"
    folder.mkdir(exist_ok=True)
    write_wav(folder / "say.wav", says if says is not None else np.zeros(RATE_HZ * 60, dtype=np.int16))
    write_wav(folder / "alert.wav", np.zeros(RATE_HZ // 10, dtype=np.int16))
    conf = folder / "baresip"
    conf.mkdir(exist_ok=True)
    port = free_port()
    rtp = free_port() & ~1
    (conf / "config").write_text(BARESIP_CONFIG.format(host=HOST, port=port, tmp=folder, rtp_low=rtp,
                                                       rtp_high=rtp + 10))
    answermode = "auto" if auto_answer else "manual"
    (conf / "accounts").write_text(
        f"<sip:{spec.agent_id}@{HOST}:{engine_sip_port};transport=udp>;auth_pass={spec.password};"
        f"regint=600;answermode={answermode}\n"
    )
    (conf / "contacts").write_text("")
    process = await asyncio.create_subprocess_exec(
        "baresip", "-s", "-f", str(conf), "-t", str(quit_after_s),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=folder,
    )
    agent = BaresipAgent(spec, folder, process)
    reader = asyncio.create_task(agent._read(), name=f"baresip-{spec.agent_id}")
    try:
        yield agent
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, 5)
