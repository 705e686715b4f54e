"""An engine in this process with outbound campaigns, SIPp callees on free ports, and a callee that
answers with real RTP, speaks and presses keys (for AMD and the revisit flow end to end)."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from bench.outbound import REACH_FLOW, daytime_zone
from ivr.clock import LoopClock
from ivr.config import EngineConfig
from ivr.engine.app import Engine
from ivr.engine.outbound import OutboundCalls, running_with_outbound
from ivr.rtp import MediaEngine, MediaParams
from ivr.sip.sdp import answer_offer, negotiated_codec
from ivr.sip.transport import SipTransport
from ivr.sipua.calls import IncomingCall
from ivr.sipua.useragent import UserAgent
from ivr.testing import peers
from ivr.testing.caller import Step, TestCaller, _Ear
from tests.integration.sip.sip_peers import HOST, SippResult, _finish, free_port, media_port

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"
needs_sipp = pytest.mark.skipif(peers.SIPP.missing, reason=peers.SIPP.reason)
needs_tts = pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason)

def campaign_yaml(cid: str, port: int, *, flow: str = "reach", extra: str = "", amd: bool = False) -> str:
    return (
        f"id: {cid}\nflow: {flow}\ntrunk: \"sip:{{number}}@{HOST}:{port}\"\ntimezone: {daytime_zone()}\n"
        "windows:\n  - {days: [mon, tue, wed, thu, fri, sat, sun], from: \"08:00\", to: \"21:00\"}\n"
        f"pacing: {{calls_per_s: 5, max_concurrent: 5}}\nno_answer_s: 3\namd: {str(amd).lower()}\n{extra}"
    )


@dataclass
class OutboundRig:
    engine: Engine
    outbound: OutboundCalls
    tmp: pathlib.Path

    async def wait_ended(self, count: int, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.outbound.ended) < count:  # noqa: ASYNC110 - a list the engine appends to
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def outbound_engine(tmp: pathlib.Path, campaigns: dict[str, str], *, paused: Sequence[str] = (),
                          db: str | None = None, node_id: str = "node-1",
                          extra_flows: Mapping[str, str] | None = None, **settings: object,
                          ) -> AsyncIterator[OutboundRig]:
    """`db`: the engine's records (a postgresql:// URL keeps the campaign state there too, shared);
    `extra_flows`: more flows by file stem; `settings`: more EngineConfig fields."""
    flows = tmp / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "flows" / "revisit.yaml", flows / "revisit.yaml")
    (flows / "reach.yaml").write_text(REACH_FLOW, encoding="utf-8")
    for stem, text in (extra_flows or {}).items():
        (flows / f"{stem}.yaml").write_text(text, encoding="utf-8")
    folder = tmp / "campaigns"
    folder.mkdir(exist_ok=True)
    for name, text in campaigns.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    rtp = free_port()
    config = EngineConfig(
        flows_dir=flows, db=db or str(tmp / "ivr.db"), node_id=node_id, sip_port=free_port(),
        http_port=free_port(socket.SOCK_STREAM),
        rtp_port_min=30000 + rtp % 10000, rtp_port_max=30000 + rtp % 10000 + 200, asr_processes=0, asr_prewarm=0,
        campaigns_dir=folder, outbound_db=tmp / "outbound.db", demo_backend=False, **settings,  # type: ignore[arg-type]
    )
    async with running_with_outbound(config) as (engine, outbound):
        for cid in paused:
            outbound.scheduler.pause(cid)
        yield OutboundRig(engine, outbound, tmp)


@contextlib.asynccontextmanager
async def sipp_callee(scenario: str, tmp: pathlib.Path, *, calls: int = 1, timeout_s: float = 30.0,
                      **substitutions: str) -> AsyncIterator[tuple[int, asyncio.Task[SippResult]]]:
    """SIPp as the callee on a free port for `calls` calls; yields (port, task with its result)."""
    text = (SCENARIOS / scenario).read_text()
    for key, value in substitutions.items():
        text = text.replace(f"__{key.upper()}__", value)
    path = tmp / f"{secrets.token_hex(3)}-{scenario}"
    path.write_text(text)
    port = free_port()
    error_file = tmp / f"{path.stem}-errors.log"
    args = ["sipp", "-sf", str(path), "-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(media_port()),
            "-m", str(calls), "-nostdin", "-trace_err", "-error_file", str(error_file),
            "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-trace_msg", "-message_file",
            str(tmp / f"{path.stem}-messages.log")]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd=tmp)
    task = asyncio.ensure_future(_finish(proc, error_file, timeout_s + 10))
    try:
        yield port, task
    finally:
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


@dataclass
class Callee:
    """Answers every INVITE with real RTP and runs `steps` (say, keys, await prompts) on it, or the steps
    `by_number` gives for the number dialled."""

    steps: Sequence[Step] = ()
    by_number: Mapping[str, Sequence[Step]] = field(default_factory=dict)
    ua: UserAgent | None = None
    media: MediaEngine | None = None
    port: int = 0
    answered: int = 0
    heard: list[object] = field(default_factory=list)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        clock = LoopClock()
        transport = await SipTransport.open(HOST, 0)
        self.port = transport.local_address[1]
        self.ua = UserAgent(transport, clock, user="callee", on_incoming_call=self._on_call)
        self.media = MediaEngine(host=HOST, port_first=41000, port_last=41998)
        self._player = TestCaller(self.ua, self.media, clock, host=HOST)

    async def _on_call(self, incoming: IncomingCall) -> None:
        assert self.media is not None
        offer = incoming.offer_sdp
        assert offer is not None
        session = await self.media.open_session(call_id=f"callee-{incoming.call_id}")
        answer = answer_offer(offer, local_address=HOST, local_port=session.local_port, session_id=7)
        remote = negotiated_codec(offer)
        incoming.ring()
        leg = incoming.answer(answer.serialize())
        codec = negotiated_codec(answer)
        session.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                  payload_type=codec.payload_type, telephone_event_pt=codec.dtmf_payload_type))
        self.answered += 1
        ear = _Ear(self._player.clock)
        session.add_audio_consumer(ear)
        started = self._player.clock.now()
        try:
            async with asyncio.timeout(90):
                steps = self.by_number.get(incoming.dialed, self.steps)
                await self._player._run(steps, leg, session, ear, self._note, started)
                await leg.wait_ended()
        except Exception as exc:  # the callee hangs up; the test reads why in `timeline`
            self._note("failed", f"{incoming.dialed}: {type(exc).__name__}: {exc}")
        finally:
            self.heard.append(ear.audio())
            self.media.release(session)
            self.done.set()

    def _note(self, what: str, detail: str = "") -> None:
        self.timeline.append((round(self._player.clock.wall().timestamp(), 2), what, detail))

    async def close(self) -> None:
        if self.ua is not None:
            await self.ua.close()
            await self.ua.transport.close()
        if self.media is not None:
            self.media.close()
