"""A whole call on one FakeClock, with no socket and no waiting: INVITE → flow → queue → agent INVITE with
X-IVR headers → bridge → BYE. SIP runs over `ivr.testing.sipharness.MemoryNetwork`, RTP over
`ivr.testing.rtpprobe.MemoryNetwork`; the engine's side is built from the same parts `Engine.start`
joins (FlowCalls, SipLegs, QueueHandoff, the ACD, the call event stream)."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from engine_fakes import one_agent_acd_config
from numpy.typing import NDArray

from ivr.acd import Acd, MemoryBackend
from ivr.call import CallEnded, TransferContext
from ivr.clock import FakeClock
from ivr.engine.agents import AgentDesk, AgentRegistrar
from ivr.engine.calls import FlowCalls
from ivr.engine.context import hotline_headers
from ivr.engine.dialer import SipLegs
from ivr.engine.events import (
    AgentBridged,
    CallAnswered,
    CallEvent,
    CallEvents,
    CallFinished,
    CallQueued,
    JourneyStepped,
    QueueLeft,
    RecordClosed,
    RecordOpened,
)
from ivr.engine.flowprompts import FlowPrompts
from ivr.engine.handoff import QueueHandoff
from ivr.flow import FlowRegistry, Interpreter
from ivr.journey import Outcome
from ivr.rtp import MediaEngine, MediaParams, MediaSession
from ivr.sip.events import ByeReceived
from ivr.sip.sdp import SessionDescription, answer_offer, make_offer, negotiated_codec
from ivr.sipua.calls import IncomingCall
from ivr.sipua.useragent import UserAgent
from ivr.testing import rtpprobe, sipharness
from ivr.voice import PromptLibrary, RenderCache, load_dialects
from ivr.web.live import LiveState

ROOT = pathlib.Path(__file__).resolve().parents[3]
ENGINE, CALLER, AGENT = ("10.0.0.1", 5060), ("10.0.0.5", 5060), ("10.0.0.9", 5060)
FLOW = """\
id: whole
version: "1"
numbers: ["7000"]
dialects: [en]
default_dialect: en
queues: [general]
prompts:
  greeting: {en: "Hello, connecting you to an agent."}
  queue_position: {en: "You are number {position}."}
  callback_saved: {en: "We will call you back on {number}."}
start: hello
nodes:
  hello:
    type: play
    prompt: greeting
    next: to_human
  to_human:
    type: queue
    queue: general
    answered: done
    callback: done
    unavailable: done
  done:
    type: hangup
"""

class SilentTts:
    """TTS for the test: 0.1 s of silence per character (the prompt's length is all the call needs)."""

    engine_id = "silent 1"

    def voices(self) -> frozenset[str]:
        return frozenset({"en-us", "cmn-latn-pinyin", "yue", "hak"})

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> NDArray[np.int16]:
        return np.zeros(80 * len(text) + 160, dtype=np.int16)


@dataclass
class AgentPhone:
    """The agent's softphone: rings 2 s, answers, and waits for the BYE; keeps the INVITEs' headers."""

    clock: FakeClock
    media: MediaEngine
    invites: list[dict[str, str | None]] = field(default_factory=list)
    byes: int = 0

    async def __call__(self, call: IncomingCall) -> None:
        self.invites.append({name: call.header(name) for name in ("X-IVR-Call-ID", "X-IVR-Queue", "X-IVR-Dialect")})
        call.ring()
        await self.clock.sleep(2.0)
        session = await self.media.open_session(call_id="agent")
        assert call.offer_sdp is not None
        answer = answer_offer(call.offer_sdp, local_address=AGENT[0], local_port=session.local_port, session_id=9)
        leg = call.answer(answer.serialize())
        start_media(session, leg.remote_sdp)
        try:
            while not isinstance(await leg.next_event(), ByeReceived):
                pass
            self.byes += 1
        except CallEnded:
            pass
        finally:
            self.media.release(session)


def start_media(session: MediaSession, remote_sdp: bytes) -> None:
    remote = negotiated_codec(SessionDescription.parse(remote_sdp))
    session.start(MediaParams(remote=(remote.remote_address, remote.remote_port), payload_type=remote.payload_type,
                              telephone_event_pt=remote.dtmf_payload_type))


@dataclass
class Site:
    clock: FakeClock
    events: list[CallEvent]
    acd: Acd
    caller_ua: UserAgent
    caller_media: MediaEngine
    agent: AgentPhone
    calls: FlowCalls


@pytest.fixture
async def site(tmp_path: pathlib.Path) -> AsyncIterator[Site]:
    clock = FakeClock()
    sip, rtp = sipharness.MemoryNetwork(clock), rtpprobe.MemoryNetwork()
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "whole.yaml").write_text(FLOW, encoding="utf-8")
    dialects = load_dialects(ROOT / "dialects")
    registry = FlowRegistry(tmp_path / "flows", clock=clock, fallbacks=dialects.fallbacks())
    assert all(not getattr(r, "errors", ()) for r in registry.load_all())
    prompts = PromptLibrary(dialects, SilentTts(), RenderCache(tmp_path / "cache"), tmp_path / "recordings")
    prompts.build([FlowPrompts.of(flow) for flow in registry.flows()])
    events: list[CallEvent] = []
    stream = CallEvents([events.append])
    acd_config = one_agent_acd_config()
    media = MediaEngine(host=ENGINE[0], port_first=20000, port_last=20100, clock=clock, network=rtp)
    async with Acd(acd_config, MemoryBackend(), clock) as acd:
        desk = AgentDesk(acd, LiveState(), clock)
        registrar = AgentRegistrar(acd_config, desk.registration_changed, b"secret")
        interpreter = Interpreter(sink=stream, clock=clock)
        calls: FlowCalls | None = None

        async def on_incoming_call(incoming: IncomingCall) -> None:
            assert calls is not None
            await calls(incoming)

        ua = UserAgent(sip.transport(ENGINE), clock, on_incoming_call,
                       accept_number=lambda dialed: registry.flow_for_number(dialed) is not None, registrar=registrar)
        legs = SipLegs(ua, media, prompts, clock, ENGINE[0])
        handoff = QueueHandoff(acd, legs, stream, clock, lambda number: f"sip:{number}@{CALLER[0]}")
        calls = FlowCalls(registry=registry, interpreter=interpreter, legs=legs, ears=lambda: None, queues=handoff,
                          events=stream, dialect_memory=_NoMemory(), flow_variables={}, clock=clock)
        agent = AgentPhone(clock, MediaEngine(host=AGENT[0], port_first=30000, port_last=30100, clock=clock,
                                              network=rtp))
        agent_ua = UserAgent(sip.transport(AGENT), clock, agent, accept_number=lambda dialed: True)
        caller_ua = UserAgent(sip.transport(CALLER), clock, None, accept_number=lambda dialed: False)
        caller_media = MediaEngine(host=CALLER[0], port_first=40000, port_last=40100, clock=clock, network=rtp)
        await acd.controls.login("a1", f"sip:a1@{AGENT[0]}:{AGENT[1]}")
        try:
            async with clock.autojump():
                yield Site(clock, events, acd, caller_ua, caller_media, agent, calls)
                await asyncio.gather(*calls.in_progress, return_exceptions=True)
        finally:
            for closing in (caller_ua, agent_ua, ua):
                await closing.close()
            await legs.aclose()
            await interpreter.aclose()
            media.close()


class _NoMemory:
    """A dialect memory that knows no caller."""

    async def lookup(self, caller: str) -> str | None:
        return None

    def set(self, caller: str, dialect: str) -> None:
        pass


async def test_invite_flow_queue_agent_with_x_ivr_headers_bridge_and_bye_on_a_fake_clock(site: Site) -> None:
    clock = site.clock
    session = await site.caller_media.open_session(call_id="caller")
    offer = make_offer(local_address=CALLER[0], local_port=session.local_port, session_id=5)
    outgoing = site.caller_ua.invite(f"sip:7000@{ENGINE[0]}:{ENGINE[1]}", offer.serialize(), from_user="13800000000")
    async with clock.timeout(5.0):
        leg = await outgoing.answered()
    start_media(session, leg.remote_sdp)

    async with clock.timeout(60.0):  # greeting, then the queue rings the agent, who answers after 2 s
        while not any(isinstance(e, AgentBridged) for e in site.events):
            await clock.sleep(0.1)
    bridged_at = clock.now()
    (invite,) = site.agent.invites
    assert invite == {"X-IVR-Call-ID": leg.call_id, "X-IVR-Queue": "general", "X-IVR-Dialect": "en"}
    assert site.acd.agent("a1").state.value == "in_call"

    await clock.sleep(30.0)  # they talk
    await leg.bye()
    async with clock.timeout(10.0):
        while not any(isinstance(e, CallFinished) for e in site.events):
            await clock.sleep(0.1)
    async with clock.timeout(10.0):
        while site.agent.byes == 0:
            await clock.sleep(0.1)

    kinds = [type(e) for e in site.events if not isinstance(e, JourneyStepped)]
    assert kinds == [CallAnswered, RecordOpened, CallQueued, AgentBridged, QueueLeft, RecordClosed, CallFinished]
    closed = next(e for e in site.events if isinstance(e, RecordClosed))
    assert closed.record.outcome is Outcome.TO_AGENT and closed.call_id == leg.call_id
    left = next(e for e in site.events if isinstance(e, QueueLeft))
    assert 2.0 <= left.wait_s <= bridged_at  # the wait ends when the agent answers (2 s of ringing)
    assert site.acd.agent("a1").state.value in ("wrap_up", "idle")
    assert site.acd.agent("a1").calls_missed == 0
    site.caller_media.release(session)


async def call_with_context(site: Site) -> RecordClosed:
    """A call whose INVITE carries another hotline's context (User-to-User and X-IVR headers); its record."""
    clock = site.clock
    session = await site.caller_media.open_session(call_id="caller")
    offer = make_offer(local_address=CALLER[0], local_port=session.local_port, session_id=5)
    context = TransferContext("group-call-7", intent="claim", customer_id="C-1001", summary="my car was hit")
    outgoing = site.caller_ua.invite(f"sip:7000@{ENGINE[0]}:{ENGINE[1]}", offer.serialize(), from_user="95519",
                                     headers=hotline_headers(context))
    async with clock.timeout(5.0):
        leg = await outgoing.answered()
    async with clock.timeout(60.0):
        while not any(isinstance(e, AgentBridged) for e in site.events):
            await clock.sleep(0.1)
    await leg.bye()
    async with clock.timeout(10.0):
        while not any(isinstance(e, RecordClosed) for e in site.events):
            await clock.sleep(0.1)
    site.caller_media.release(session)
    return next(e for e in site.events if isinstance(e, RecordClosed))


async def test_a_trusted_peers_context_reaches_the_flow_and_the_record(site: Site) -> None:
    site.calls._context_peer = lambda host: host == CALLER[0]  # `context_peers: [<the caller's address>]`
    record = (await call_with_context(site)).record
    assert record.intent == "claim"
    assert record.variables["inbound_customer_id"] == "C-1001"
    assert record.variables["inbound_journey_id"] == "group-call-7"


async def test_an_untrusted_peers_context_is_ignored(site: Site) -> None:
    record = (await call_with_context(site)).record  # no context_peers: anyone can write these headers
    assert record.intent == ""
    assert not any(name.startswith("inbound_") for name in record.variables)
