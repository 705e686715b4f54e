"""Human agents for live engine tests: ACD config files, and baresip softphones that log in by REGISTER.

A `BaresipAgent` is a real softphone with no sound card: it registers with digest auth to the
engine (which logs the agent in), answers (or just rings, when `auto_answer` is off), "speaks" a
WAV file through baresip's aufile source and records what it hears into another. Its SIP trace
(`baresip -s`) is kept, so a test can read the INVITE the engine sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import re
import socket
import wave
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import watchfiles
import yaml
from numpy.typing import NDArray

from ivr.testing.caller import CallReport, Pause, Step, TestCaller
from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine
from tests.integration.sip.sip_peers import BARESIP_CONFIG, HOST, baresip_rtp_ports, free_port

RATE_HZ = 8000


@dataclass(slots=True, frozen=True)
class AgentSpec:
    agent_id: str
    skills: Mapping[str, int]
    dialects: tuple[str, ...] = ("cmn", "en")
    site: str = "beijing"
    wrap_up_s: float = 1.0
    supervisor: bool = False
    """agents.yaml `supervisor: true`: may dial supervisors' feature codes (*31/*32/*33<agent>)."""

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
             "skills": dict(a.skills), "dialects": list(a.dialects), "wrap_up_s": a.wrap_up_s,
             **({"supervisor": True} if a.supervisor else {})}
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
    config = {"agents_file": str(tmp / "agents.yaml"), "queues_file": str(tmp / "queues.yaml"),
              "drain_timeout_s": 2, **settings}
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
    console_port: int = 0
    """baresip's `cons` module listens here (UDP) when started with `console=True`: see `command`."""

    def command(self, text: str) -> None:
        """Type a command into baresip (`/dial *21`, `/transfer sip:a2@...`), as its user would."""
        assert self.console_port, "start the agent with console=True"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode() + b"\n", (HOST, self.console_port))

    def heard(self) -> NDArray[np.int16]:
        """What the agent heard on its calls (sndfile's decoder-side dumps), in call order."""
        dumps = sorted(self.folder.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        assert dumps, f"agent {self.spec.agent_id} recorded nothing in {self.folder}"
        return np.concatenate([read_wav(path) for path in dumps])

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
    says: NDArray[np.int16] | None = None, quit_after_s: int = 120, console: bool = False,
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
    port, rtp = free_port(), baresip_rtp_ports()
    config = BARESIP_CONFIG.format(host=HOST, port=port, tmp=folder, rtp_low=rtp, rtp_high=rtp + 10)
    # baresip 1.0's aufile is a source only: its sndfile filter records what the agent hears.
    console_port = free_port() if console else 0
    if console:  # commands typed by the test, as the agent would at the phone (BaresipAgent.command)
        config += f"module cons.so\ncons_listen {HOST}:{console_port}\n"
    (conf / "config").write_text(config + f"module sndfile.so\nsnd_path {folder}\n")
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
    agent = BaresipAgent(spec, folder, process, console_port=console_port)
    reader = asyncio.create_task(agent._read(), name=f"baresip-{spec.agent_id}")
    try:
        yield agent
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, 5)


@contextlib.asynccontextmanager
async def running_engine(tmp: pathlib.Path, config: pathlib.Path) -> AsyncIterator[RunningEngine]:
    """`ivr serve --config CONFIG` in a subprocess (started off the loop), stopped on exit."""
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    engine = await asyncio.to_thread(start_engine, tmp, "--config", str(config))
    try:
        yield engine
    finally:
        await asyncio.to_thread(stop_engine, engine)


def log_events(engine: RunningEngine, event: str, **match: object) -> list[dict[str, Any]]:
    """The engine's JSON log entries named `event` whose keys equal `match`, oldest first."""
    found = []
    for line in engine.log.read_text(encoding="utf-8", errors="replace").splitlines():
        if f'"{event}"' not in line or not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items()):
            found.append(entry)
    return found


async def wait_for_log(engine: RunningEngine, event: str, timeout_s: float = 60.0, *, count: int = 1,
                       **match: object) -> list[dict[str, Any]]:
    """Wait until the engine (another process) has logged `count` entries `event` matching `match`:
    re-read its log file whenever it changes (inotify; at least every 0.5 s); returns them."""
    try:
        async with asyncio.timeout(timeout_s):
            found = log_events(engine, event, **match)
            if len(found) >= count:
                return found
            async for _ in watchfiles.awatch(engine.log, debounce=20, step=10, rust_timeout=500,
                                             yield_on_timeout=True, watch_filter=None):
                found = log_events(engine, event, **match)
                if len(found) >= count:
                    return found
    except TimeoutError:
        pass
    tail = engine.log.read_text(encoding="utf-8", errors="replace")[-4000:]
    raise AssertionError(f"engine logged no {count} x {event} {match} in {timeout_s} s:\n{tail}")


async def until_agent_on_call(engine: RunningEngine, agent_id: str, call_id: str,
                              timeout_s: float = 15.0) -> dict[str, Any]:
    """The agent's screen-pop (`/api/agents/<id>/current`) once the ACD has them in call `call_id`."""
    pop: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                pop = await asyncio.to_thread(engine.get, f"/api/agents/{agent_id}/current")
                if pop["agent"]["state"] == "in_call" and (pop["call"] or {}).get("call_id") == call_id:
                    return pop
                await asyncio.sleep(0.1)  # another process's state: nothing to await but its API
    except TimeoutError:
        raise AssertionError(f"agent {agent_id} not in call {call_id} within {timeout_s} s: {pop}") from None


async def until_recorded(agent: BaresipAgent, seconds: float, timeout_s: float = 20.0) -> None:
    """Wait until the agent's phone has recorded `seconds` of its current call (baresip's sndfile dump of
    what it decodes grows by 16 kB a second of 8 kHz 16-bit audio; its header is only written at close)."""
    wanted = 44 + int(seconds * RATE_HZ) * 2
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                dumps = sorted(agent.folder.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
                size = dumps[-1].stat().st_size if dumps else 0
                if size >= wanted:
                    return
                await asyncio.sleep(0.1)  # another process's file: nothing to await but its size
    except TimeoutError:
        raise AssertionError(f"agent {agent.spec.agent_id} recorded {size} bytes, not {seconds} s") from None


SIPP_CALLER_KEYS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A caller keying its way to a human: INVITE -> 200 -> ACK; key 0 by SIP INFO during the greeting,
     then wait __HOLD_MS__ ms (queue, agent) and hang up. -->
<scenario name="ivr_caller_keys_to_agent">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:__CALLER__@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:__CALLER__@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:__CALLER__@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="1500"/>
  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:__CALLER__@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 INFO
      [routes]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=0
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="__HOLD_MS__"/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:__CALLER__@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def sipp_caller_scenario(tmp: pathlib.Path, caller: str, hold_s: float) -> pathlib.Path:
    """SIPP_CALLER_KEYS for caller number `caller`, hanging up `hold_s` after the key."""
    path = tmp / "caller_keys.xml"
    path.write_text(SIPP_CALLER_KEYS.replace("__CALLER__", caller).replace("__HOLD_MS__", str(int(hold_s * 1000))))
    return path


async def call_until(engine: RunningEngine, caller: TestCaller, steps: Sequence[Step], *, from_number: str,
                     event: str, within_s: float = 60.0, uri: str | None = None, **match: object) -> CallReport:
    """Place a call running `steps` (to `uri`, by default the engine's hotline number), and hang up as soon as
    the engine has logged `event` (with `match`) for it: the state the test checks, rather than a fixed time on
    the line that must cover the slowest run."""
    earlier = len(log_events(engine, "invite_received", caller=from_number))
    on_the_line = [Pause(0.5)] * int(within_s / 0.5)  # short steps: the caller sees its own hang-up
    task = asyncio.create_task(caller.call(uri or engine.uri, [*steps, *on_the_line], from_number=from_number,
                                           linger_s=0.0, max_duration_s=within_s + 30))
    try:
        invites = await wait_for_log(engine, "invite_received", 30.0, count=earlier + 1, caller=from_number)
        call_id = invites[-1]["call_id"]
        await wait_for_log(engine, event, within_s, call_id=call_id, **match)
        for leg in list(caller.ua.legs):
            if leg.call_id == call_id:
                await leg.bye()
        report = await asyncio.wait_for(task, 15)
    finally:
        task.cancel()
    assert report.call_id == call_id
    return report
