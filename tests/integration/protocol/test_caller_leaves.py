"""Issue 25: a queued caller who hangs up while an agent's phone rings is withdrawn at once.

The ringing phone (SIPp: 180, never answers) must get the engine's CANCEL within a second of the
caller's BYE, not when the ring timeout runs out. A phone that answers nothing at all (gone behind NAT:
a UDP port that only listens) must never get a new INVITE for the caller who left: retransmissions of the
first INVITE are the same transaction, a new branch or Call-ID would be a ghost offer. Either way the
agent's state goes back to available and no missed call is counted against them: the caller, not the
agent, ended the ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from ivr.testing.caller import Pause, TestCaller
from tests.integration.engine.agents import AgentSpec, log_events
from tests.integration.engine.conftest import RunningEngine, stop_engine
from tests.integration.protocol.conftest import (
    QUEUE_NUMBERS,
    engine_for_protocols,
    until_agent_state,
    uri,
)
from tests.integration.protocol.peer import run_peer, sipp_agent
from tests.integration.sip.sip_peers import HOST, needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]

RINGING_AGENT = AgentSpec("p-rings", {"complaints": 2})
SILENT_AGENT = AgentSpec("p-silent", {"elderly": 2})
RING_TIMEOUT_S = 10.0
"""Long for the ringing phone: a CANCEL within 1 s of the hang-up cannot be the ring timeout's."""
SILENT_RING_TIMEOUT_S, SILENT_RETRY_AFTER_S = 2.0, 1.0
"""Short for the silent phone: an engine that forgot the caller re-offers them within about 3 s."""
GHOST_WATCH_S = 3 * (SILENT_RING_TIMEOUT_S + SILENT_RETRY_AFTER_S)
CANCEL_WITHIN_S = 1.0
QUEUES = {
    "complaints": {"ring_timeout_s": RING_TIMEOUT_S},
    "elderly": {"ring_timeout_s": SILENT_RING_TIMEOUT_S, "retry_after_s": SILENT_RETRY_AFTER_S},
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    tmp = tmp_path_factory.mktemp("leaves")
    running = engine_for_protocols(tmp, [RINGING_AGENT, SILENT_AGENT], queues=QUEUES)
    try:
        yield running
    finally:
        stop_engine(running)


@dataclass(slots=True)
class SilentPhone(asyncio.DatagramProtocol):
    """A phone that hears everything and answers nothing."""

    received: list[tuple[float, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((time.time(), data.decode(errors="replace")))
        self.changed.set()

    def invites(self) -> list[str]:
        return [text for _, text in self.received if text.startswith("INVITE ")]

    async def until(self, invites: int, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while len({transaction(i) for i in self.invites()}) < invites:
                    self.changed.clear()
                    await self.changed.wait()
                return True
        return False


def transaction(invite: str) -> tuple[str, str]:
    """(Call-ID, top Via branch) of an INVITE: equal for a retransmission, new for a new offer."""
    call_id = re.search(r"^(?:Call-ID|i):\s*(\S+)", invite, re.MULTILINE | re.IGNORECASE)
    branch = re.search(r"branch=([^;\s,]+)", invite)
    assert call_id and branch, invite
    return call_id.group(1), branch.group(1)


@contextlib.asynccontextmanager
async def silent_phone() -> AsyncIterator[tuple[int, SilentPhone]]:
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(SilentPhone, local_addr=(HOST, 0))
    try:
        yield transport.get_extra_info("sockname")[1], phone
    finally:
        transport.close()


async def hang_up(caller: TestCaller, call: asyncio.Task[object]) -> float:
    """The caller's BYE (every leg it has up); returns when it was sent (Unix time)."""
    sent_at = time.time()
    for leg in caller.ua.legs:
        await leg.bye()
    await asyncio.wait_for(call, 15)
    return sent_at


def misses(engine: RunningEngine, agent_id: str) -> list[dict[str, object]]:
    return log_events(engine, "agent_not_answering", agent=agent_id)


async def test_a_ringing_phone_gets_cancel_within_a_second_of_the_caller_hanging_up(
    engine: RunningEngine, caller: TestCaller, tmp_path: pathlib.Path
) -> None:
    agent_id = RINGING_AGENT.agent_id
    async with sipp_agent(tmp_path, agent_id, RINGING_AGENT.password, engine.sip_port, "uas_agent_rings.xml",
                          values={"cancel_timeout_ms": int(RING_TIMEOUT_S * 2000)}) as agent:
        await until_agent_state(engine, agent_id, "available")
        call = asyncio.create_task(caller.call(uri(engine, QUEUE_NUMBERS["complaints"]), [Pause(1.0)] * 40,
                                               from_number="13700000811", linger_s=0.0, max_duration_s=45.0))
        try:
            await until_agent_state(engine, agent_id, "ringing")
            hung_up_at = await hang_up(caller, call)
        finally:
            call.cancel()
        run = await asyncio.wait_for(agent.finished, RING_TIMEOUT_S * 3)
    assert run.returncode == 0, run.explain()
    (cancel,) = run.received("CANCEL")
    assert cancel.at - hung_up_at <= CANCEL_WITHIN_S, f"CANCEL {cancel.at - hung_up_at:.2f} s after the BYE"
    assert len(run.received("INVITE")) == 1
    await until_agent_state(engine, agent_id, "available", timeout_s=5.0)
    assert misses(engine, agent_id) == [], "the caller left: no missed call for the agent"


async def test_a_silent_phone_is_never_offered_the_caller_again(engine: RunningEngine, caller: TestCaller,
                                                                 tmp_path: pathlib.Path) -> None:
    agent_id = SILENT_AGENT.agent_id
    async with silent_phone() as (port, phone):
        registration = await run_peer("register_agent.xml", engine.sip_port, tmp_path, values={"contact_port": port},
                                      service=agent_id, extra=["-au", agent_id, "-ap", SILENT_AGENT.password],
                                      timeout_s=15.0)
        assert registration.returncode == 0, registration.explain()
        await until_agent_state(engine, agent_id, "available")
        call = asyncio.create_task(caller.call(uri(engine, QUEUE_NUMBERS["elderly"]), [Pause(1.0)] * 40,
                                               from_number="13700000812", linger_s=0.0, max_duration_s=45.0))
        try:
            assert await phone.until(1, 15.0), "the engine never offered the caller to the agent"
            await hang_up(caller, call)
        finally:
            call.cancel()
        ghost = await phone.until(2, GHOST_WATCH_S)
    offers = sorted({transaction(i) for i in phone.invites()})
    assert not ghost and len(offers) == 1, f"INVITEs for a caller who had left: {offers}"
    await until_agent_state(engine, agent_id, "available", timeout_s=5.0)
    assert misses(engine, agent_id) == [], "the caller left: no missed call for the agent"
