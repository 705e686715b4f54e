"""One `ivr serve` per test module with small flows for the protocol paths, and agents SIPp can play.

The prompts are recorded tones (no TTS needed); every agent serves a queue of its own, so an agent
left registered by one test is never offered another test's caller.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pathlib
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from ivr.testing.caller import TestCaller
from tests.integration.engine.agents import AgentSpec, write_engine_config, write_wav
from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine

KEYS_NUMBER, HOLD_NUMBER, TRANSFER_NUMBER = "7100", "7400", "7600"
TRANSFER_TARGET = "sip:partner@127.0.0.1:5999"
LOSSY_AGENT = AgentSpec("p-lossy", {"claims": 2})
CROSSING_AGENT = AgentSpec("p-crossing", {"service": 2})
QUEUE_NUMBERS = {"claims": "7510", "service": "7520", "complaints": "7530", "elderly": "7540"}
"""A number per queue: the flow behind it puts every caller straight into that queue."""

_HEADER = """\
id: {id}
version: "1"
numbers: ["{number}"]
dialects: [en]
default_dialect: en
queues: [{queue}]
"""

def _collect_flow(flow_id: str, number: str, *, max_length: int, timeout_s: int) -> str:
    """A flow that plays the tone, collects keys into `entered` (speech off), then hangs up."""
    return _HEADER.format(id=flow_id, number=number, queue="general") + f"""\
start: entry
prompts:
  enter: {{en: "Replaced by a recorded tone."}}
nodes:
  entry:
    type: collect
    prompt: enter
    store: entered
    speech: false
    max_length: {max_length}
    timeout_s: {timeout_s}
    next: done
  done:
    type: hangup
"""


FLOWS = {
    "keys": _collect_flow("keys", KEYS_NUMBER, max_length=12, timeout_s=10),
    "hold": _collect_flow("hold", HOLD_NUMBER, max_length=1, timeout_s=30),
    "transfer": _HEADER.format(id="transfer", number=TRANSFER_NUMBER, queue="general") + f"""\
start: out
nodes:
  out:
    type: transfer
    target: "{TRANSFER_TARGET}"
    failed: done
  done:
    type: hangup
""",
    **{
        f"to_{queue}": _HEADER.format(id=f"to_{queue}", number=number, queue=queue) + f"""\
start: to_human
nodes:
  to_human:
    type: queue
    queue: {queue}
    answered: done
    callback: done
    unavailable: done
  done:
    type: hangup
"""
        for queue, number in QUEUE_NUMBERS.items()
    },
}


def engine_for_protocols(tmp: pathlib.Path, agents: list[AgentSpec],
                         queues: Mapping[str, Mapping[str, object]] | None = None, *,
                         arguments: Sequence[str] = (), **settings: object) -> RunningEngine:
    """`ivr serve` with FLOWS, recorded-tone prompts and `agents`; `queues` overrides queue keys
    (ring_timeout_s...), `settings` are further config keys (acd_backend, redis_url...), `arguments`
    further command-line flags (`--db URL`: the flag beats the fixture's own database file)."""
    prompts = tmp / "prompts" / "en"
    prompts.mkdir(parents=True)
    t = np.arange(8000) / 8000
    write_wav(prompts / "enter.wav", (np.sin(2 * np.pi * 1200 * t) * 0.2 * 32767).astype(np.int16))
    flows = tmp / "flows"
    flows.mkdir()
    for stem, text in FLOWS.items():
        (flows / f"{stem}.yaml").write_text(text, encoding="utf-8")
    config = write_engine_config(tmp, agents, queues, prompts_dir=str(tmp / "prompts"), **settings)
    running = start_engine(tmp, "--config", str(config), "--flows", str(flows), *arguments)
    try:
        status = {f["path"]: (f["status"], f["errors"]) for f in running.get("/api/flows")["flows"]}
        assert all(s == "loaded" for s, _ in status.values()), f"a protocol test flow did not load: {status}"
    except BaseException:
        stop_engine(running)
        raise
    return running


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    running = engine_for_protocols(tmp_path_factory.mktemp("protocol"), [LOSSY_AGENT, CROSSING_AGENT])
    try:
        yield running
    finally:
        stop_engine(running)


@pytest.fixture
async def caller() -> AsyncIterator[TestCaller]:
    base = 45000 + (os.getpid() % 40) * 100  # off the other integration tests' RTP ports
    test_caller = await TestCaller.open(rtp_ports=(base, base + 98))
    try:
        yield test_caller
    finally:
        await test_caller.close()


def fresh_number(prefix: str) -> str:
    """`prefix` and four digits no earlier call from this process had: a test that finds its call by the
    caller's number finds only its own, even repeated (`--count`) against one module's engine."""
    return f"{prefix}{next(_numbers) % 10000:04d}"


_numbers = itertools.count(secrets.randbelow(10000))


def uri(engine: RunningEngine, number: str) -> str:
    return f"sip:{number}@127.0.0.1:{engine.sip_port}"


async def agent_state(engine: RunningEngine, agent_id: str) -> dict[str, Any]:
    agents = (await asyncio.to_thread(engine.get, "/api/agents"))["agents"]
    return next(dict(a) for a in agents if a["agent_id"] == agent_id)


async def until_agent_state(engine: RunningEngine, agent_id: str, state: str,
                            timeout_s: float = 15.0) -> dict[str, Any]:
    """The agent's entry in `/api/agents` once the ACD says `state` (available, ringing, in_call...)."""
    seen: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                seen = await agent_state(engine, agent_id)
                if seen["state"] == state:
                    return seen
                await asyncio.sleep(0.1)  # another process's state: nothing to await but its API
    except TimeoutError:
        raise AssertionError(f"agent {agent_id} not {state} within {timeout_s} s: {seen}") from None


async def finished_call(engine: RunningEngine, caller_number: str, timeout_s: float = 25.0) -> dict[str, Any]:
    """The finished record and journey of the (one) call from `caller_number`."""
    async with asyncio.timeout(timeout_s):
        while True:
            calls = (await asyncio.to_thread(engine.get, f"/api/calls?caller={caller_number}"))["calls"]
            if calls:
                detail: dict[str, Any] = await asyncio.to_thread(engine.call_detail, calls[0]["call_id"],
                                                                 attempts=int(timeout_s / 0.25))
                return detail
            await asyncio.sleep(0.25)
