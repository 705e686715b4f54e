"""`ivr serve --workers 2` (issue 22): one node, two engine processes sharing its SIP port.

SIPp callers reach the public port from a socket each (`-t un`): the kernel spreads them over both
workers, and every message of a call (INVITE, ACK, BYE) is handled by the worker that took its
INVITE. An agent registers once (baresip, to the public port: one worker's registrar takes it) and is
offered callers held by either worker, because both apply the node's one ACD log. Callers of that
part go straight to each worker's own port, as a Kamailio dispatcher listing the workers as nodes does.
Every worker sends from the public port and writes it in Via and Contact: the phone sees one node, and
its answers reach whichever worker the kernel picks, which hands them to the worker that rang it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from ivr.testing import peers
from ivr.testing.caller import TestCaller
from tests.integration.engine.agents import (
    AgentSpec,
    baresip_agent,
    invite_headers,
    sipp_caller_scenario,
    until_agent_on_call,
    wait_for_log,
    write_engine_config,
)
from tests.integration.engine.conftest import (
    API_TOKEN,
    ROOT,
    RunningEngine,
    assert_engine_healthy,
    free_port,
    needs_tts,
)
from tests.integration.engine.hours import NIGHT_NOTICE_S, night_now
from tests.integration.engine.test_agent_controls_live import A1, A2, TO_GENERAL, hang_up, transfer_to_consulted
from tests.integration.sip.sip_peers import needs_baresip, needs_sipp, run_sipp
from tests.integration.web.livestream import until_live

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    needs_tts,
    pytest.mark.skipif(peers.REDIS_SERVER.missing, reason=peers.REDIS_SERVER.reason),
]

SCENARIOS = ROOT / "tests" / "integration" / "sip" / "scenarios"
STARTUP_TIMEOUT_S = 300.0
"""Two engines start one after the other (the first renders the prompt cache), on a shared machine."""
AGENT = AgentSpec("c1", {"general": 2})
HOLD_S = 9.0
"""The demo hotline says `transfer_agent` (5.2 s) after key 0 before it queues the caller (by day)."""


@contextlib.asynccontextmanager
async def running_node(tmp: pathlib.Path, config: pathlib.Path, *, errors_expected: Sequence[str] = ()
                       ) -> AsyncIterator[tuple[RunningEngine, list[int]]]:
    """`ivr serve --workers 2`; yields the node (public SIP port, worker 0's HTTP port) and the workers'
    own SIP ports. Ready once /readyz of worker 0 answers, i.e. once both workers share the port."""
    node, own_ports = await asyncio.to_thread(start_node, tmp, config)
    try:
        yield node, own_ports
    finally:
        await asyncio.to_thread(stop_node, node, errors_expected)


def start_node(tmp: pathlib.Path, config: pathlib.Path) -> tuple[RunningEngine, list[int]]:
    tmp.mkdir(parents=True, exist_ok=True)
    sip, workers_sip, http = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    log = tmp / "engine.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", IVR_LOG_PII="true", IVR_API_TOKEN=API_TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--log-json", "serve", "--workers", "2", "--config", str(config),
         "--sip", f"127.0.0.1:{sip}", "--http", f"127.0.0.1:{http}", "--db", str(tmp / "ivr.db"),
         "--set", f"worker_sip_port={workers_sip}"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    node = RunningEngine(sip, http, tmp / "ivr.db", process, log)
    _wait_ready(node)
    return node, [workers_sip, workers_sip + 1]


def stop_node(node: RunningEngine, errors_expected: Sequence[str] = ()) -> None:
    """SIGTERM the supervisor: both workers drain and the node exits 0, with no error logged."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        node.process.wait(60)
        assert_engine_healthy(node, errors_expected)


def _wait_ready(node: RunningEngine) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise AssertionError(f"ivr serve exited with {node.process.returncode}:\n{node.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{node.api}/readyz", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    node.process.kill()
    raise AssertionError(f"ivr serve --workers 2 not ready in {STARTUP_TIMEOUT_S} s:\n{node.log.read_text()[-3000:]}")


@contextlib.asynccontextmanager
async def opened_caller(rtp_ports: tuple[int, int]) -> AsyncIterator[TestCaller]:
    caller = await TestCaller.open(rtp_ports=rtp_ports)
    try:
        yield caller
    finally:
        await caller.close()


def entries(node: RunningEngine) -> list[dict[str, object]]:
    found = []
    for line in node.log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                found.append(entry)
    return found


@pytest.mark.parametrize("transport", ["un", "u1"], ids=["a socket per caller", "one socket for all (an SBC)"])
async def test_callers_land_on_both_workers_and_each_call_stays_on_one(tmp_path: pathlib.Path, transport: str) -> None:
    # One socket: the kernel gives every datagram of that peer to one worker; the node spreads the calls.
    config = write_engine_config(tmp_path, [AGENT])
    async with running_node(tmp_path / "node", config) as (node, _own_ports):
        result = await run_sipp(SCENARIOS / "uac_basic.xml", node.sip_port, tmp_path, service="95519", calls=16,
                                rate=8, transport=transport, timeout_s=60, extra=["-max_socket", "64"])
        assert result.returncode == 0, result.explain()
        await wait_for_log(node, "call_leg_ended", 30.0, count=16)
    workers_of: dict[str, set[object]] = collections.defaultdict(set)
    for entry in entries(node):
        if "call_id" in entry and "worker" in entry:
            workers_of[str(entry["call_id"])].add(entry["worker"])
    invited = {str(e["call_id"]) for e in entries(node) if e.get("event") == "invite_received"}
    assert len(invited) == 16
    assert all(len(workers_of[call]) == 1 for call in invited), {c: workers_of[c] for c in invited}
    spread = collections.Counter(next(iter(workers_of[call])) for call in invited)
    assert set(spread) == {0, 1}, f"16 callers all reached one worker: {spread}"


@needs_baresip
async def test_an_agent_registered_once_is_offered_callers_from_both_workers(tmp_path: pathlib.Path) -> None:
    config = write_engine_config(tmp_path, [AGENT])
    async with running_node(tmp_path / "node", config) as (node, own_ports):
        async with baresip_agent(tmp_path, AGENT, node.sip_port) as agent:
            await agent.expect(r"c1@.*200 OK")
            for number, (caller, port) in enumerate(zip(("13700000501", "13700000502"), own_ports, strict=True)):
                folder = tmp_path / f"caller-{number}"
                await asyncio.to_thread(folder.mkdir)
                hold_s = HOLD_S + (NIGHT_NOTICE_S if night_now() else 0.0)
                result = await run_sipp(sipp_caller_scenario(folder, caller, hold_s), port, folder,
                                        service="95519", timeout_s=60)
                assert result.returncode == 0, result.explain()
                await wait_for_log(node, "call_bridged", 30.0, count=number + 1)
            # Worker 0's /metrics is the node's (every worker's counters summed): one REGISTER in all.
            registrations = await asyncio.to_thread(metric_value, node.http_port)
            forwarded = await asyncio.to_thread(metric_value, node.http_port,
                                                'ivr_worker_datagrams_total{way="forwarded"}')
    log = entries(node)
    bridged = [e for e in log if e.get("event") == "call_bridged"]
    assert {e["worker"] for e in bridged} == {0, 1}
    assert {e["agent"] for e in bridged} == {"c1"}
    invites = agent.invites()
    assert len(invites) == 2
    heads = [invite_headers(i) for i in invites]
    assert all(f"127.0.0.1:{node.sip_port};branch=" in h["via"] and f"127.0.0.1:{node.sip_port}>" in h["contact"]
               for h in heads), f"both workers ring the phone as the node, its one address in Via and Contact: {heads}"
    assert agent.output.count(f"UDP 127.0.0.1:{node.sip_port} ->") >= 2, "...and from it"
    assert registrations == 1, f"one REGISTER, taken by one worker: the node counted {registrations}"
    assert forwarded >= 1, "the phone's answers to the worker it does not register with were handed over"
    with contextlib.closing(sqlite3.connect(node.db)) as db:
        holders = set(db.execute("SELECT node_id, holder FROM calls").fetchall())
    assert holders == {("node-1", "node-1"), ("node-1", "node-1-w1")}, "records name the node; holder the worker"


def metric_value(http_port: int, sample: str = 'ivr_sip_register_total{result="registered"}') -> int:
    """`sample` (default: REGISTERs taken) on a /metrics (worker 0's port: the whole node's)."""
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics",
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def test_a_worker_that_dies_is_started_again_and_the_node_keeps_answering(tmp_path: pathlib.Path) -> None:
    config = write_engine_config(tmp_path, [AGENT])
    async with running_node(tmp_path / "node", config, errors_expected=["worker_died"]) as (node, _own_ports):
        # /readyz can answer before the supervisor has logged worker 1's READY: wait for the line, not a glance.
        second = (await wait_for_log(node, "worker_ready", 60.0, worker=1))[0]
        os.kill(int(str(second["pid"])), signal.SIGKILL)
        again = await wait_for_log(node, "worker_ready", 120.0, count=3)
        assert again[-1]["node"] == "node-1-w1.1", "started again as a new ACD node"
        result = await run_sipp(SCENARIOS / "uac_basic.xml", node.sip_port, tmp_path, service="95519", calls=16,
                                rate=8, transport="un", timeout_s=60, extra=["-max_socket", "64"])
        assert result.returncode == 0, result.explain()
    died = [e for e in entries(node) if e.get("event") == "worker_died"]
    assert [(e["worker"], e["exit_code"]) for e in died] == [(1, -signal.SIGKILL)]
    answered_by = {e.get("worker") for e in entries(node) if e.get("event") == "invite_received"}
    assert answered_by == {0, 1}


@needs_baresip
async def test_worker_0_shows_and_serves_the_calls_of_both_workers(tmp_path: pathlib.Path) -> None:
    """One caller on each worker (each worker's own port): worker 0's port (the node's dashboard, API and
    /metrics) shows both, and pausing the recording of the call worker 1 holds works through it."""
    config = write_engine_config(tmp_path, [AGENT], {"general": {"recording": "always"}},
                                 recording_dir=str(tmp_path / "recordings"))
    async with running_node(tmp_path / "node", config) as (node, own_ports):
        async with baresip_agent(tmp_path, AGENT, node.sip_port) as agent:
            await agent.expect(r"c1@.*200 OK")
            callers = []
            for number, (caller, port, hold_s) in enumerate(
                    (("13700000601", own_ports[1], 40.0), ("13700000602", own_ports[0], 30.0))):
                folder = tmp_path / f"caller-{number}"
                await asyncio.to_thread(folder.mkdir)
                callers.append(asyncio.create_task(run_sipp(
                    sipp_caller_scenario(folder, caller, hold_s), port, folder, service="95519", timeout_s=90)))
                if number == 0:  # the first (on worker 1) takes the agent; the second (worker 0) waits
                    bridged = (await wait_for_log(node, "call_bridged", 40.0))[0]
            held_by_1 = str(bridged["call_id"])
            assert bridged["worker"] == 1
            await wait_for_log(node, "call_enqueued", 40.0, count=2)
            async with aiohttp.ClientSession(headers=node.headers) as session:
                live = await until_live(session, node.api, lambda s: s["in_queue"] == 1 and s["with_agent"] == 1, 30.0)
            assert held_by_1 in {c["call_id"] for c in live["recent"]}
            metrics = await asyncio.to_thread(node_metrics, node)
            assert metrics["ivr_calls_total"] == 2 and metrics["ivr_calls_active"] == 2, metrics
            assert metrics['ivr_queue_length{queue="general"}'] == 1, metrics
            assert metrics["ivr_node_workers_scraped"] == 2
            pop = await until_agent_on_call(node, "c1", held_by_1)
            assert pop["call"]["caller"] == "13700000601"
            quoted = urllib.parse.quote(held_by_1, safe="")
            async with aiohttp.ClientSession(headers=node.headers) as session:
                paused, resumed = [await answer(session, f"{node.api}/api/calls/{quoted}/recording/{action}")
                                   for action in ("pause", "resume")]
            for task in callers:
                result = await task
                assert result.returncode == 0, result.explain()
    assert paused == (200, {"call_id": held_by_1, "paused": True, "path": paused[1]["path"]}), paused
    assert resumed[0] == 200 and resumed[1]["paused"] is False, resumed
    forwarded = [e for e in entries(node) if e.get("event") == "node_action_forwarded"]
    assert [e["path"].rsplit("/", 1)[1] for e in forwarded] == ["pause", "resume"]
    paused_where = [e for e in entries(node) if e.get("event") == "recording_paused"]
    assert [e.get("worker") for e in paused_where] == [1], paused_where


def node_metrics(node: RunningEngine) -> dict[str, float]:
    """Worker 0's /metrics (the node's), sample → value."""
    request = urllib.request.Request(f"{node.api}/metrics", headers=node.headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and line[0] != "#"}


async def answer(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.post(url, json={}) as response:
        return response.status, await response.json()


@needs_baresip
async def test_an_agents_consultation_reaches_the_worker_holding_the_caller(tmp_path: pathlib.Path) -> None:
    """The caller is put on the worker that does not hold a1's phone (through that worker's own port); a1's
    consultation call (to the public port: the kernel gives it to the phone's worker) is handed to the
    caller's worker, which links it to the caller, and the attended transfer (REFER with Replaces) lands."""
    config = write_engine_config(tmp_path, [A1, A2])
    async with running_node(tmp_path / "node", config) as (node, own_ports), \
            baresip_agent(tmp_path, A1, node.sip_port, console=True) as first:
        await first.expect(r"a1@.*200 OK")
        # Worker 0's /metrics is the node's; worker 1's own port counts its REGISTERs alone.
        phone_worker = 1 if await asyncio.to_thread(metric_value, node.http_port + 1) else 0
        caller_worker = 1 - phone_worker
        async with baresip_agent(tmp_path, A2, node.sip_port) as second, opened_caller((47700, 47798)) as caller:
            await second.expect(r"a2@.*200 OK")
            call = asyncio.create_task(caller.call(f"sip:95519@127.0.0.1:{own_ports[caller_worker]}", TO_GENERAL,
                                                   from_number="13700000711", linger_s=0.0))
            bridged = (await wait_for_log(node, "call_bridged", 60.0, agent="a1"))[0]
            call_id = str(bridged["call_id"])
            assert bridged["worker"] == caller_worker
            await until_agent_on_call(node, "a1", call_id)
            first.command("/dial a2")
            consulted = (await wait_for_log(node, "consultation_bridged", 30.0, agent="a1"))[0]
            assert (consulted["about"], consulted["worker"]) == (call_id, caller_worker)
            moved = await transfer_to_consulted(first, node, consulted, node.sip_port)
            assert (moved["by"], moved["to"], moved["status"]) == ("a1", "a2", 200)
            await until_agent_on_call(node, "a2", call_id)
            await hang_up(caller, call_id)
            await asyncio.wait_for(call, 15)
            forwarded = await asyncio.to_thread(metric_value, node.http_port,
                                                'ivr_worker_datagrams_total{way="forwarded"}')
    assert forwarded >= 3, "the consultation's INVITE, ACK and the phone's answers crossed between the workers"
