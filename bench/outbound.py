"""Outbound dialling at a configured rate against a SIPp callee: achieved calls/s and concurrency.

    python -m bench.outbound                      # 2,000 targets at 20 calls/s (the issue's figure)
    python -m bench.outbound --targets 200 --rate 10

One campaign (AMD off: SIPp sends no audio) over one trunk to one SIPp UAS, which answers numbers
ending 0-7 (80%: the `reach` flow says goodbye and hangs up), is busy for those ending 8 (486, 10%)
and lets those ending 9 ring until the engine's no-answer timer (10%). The engine runs in this
process (`running_with_outbound`); its CPU is this process's CPU time over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pathlib
import platform
import resource
import socket
import sys
import tempfile
import time
from collections import Counter
from zoneinfo import ZoneInfo

from ivr.config import EngineConfig
from ivr.engine.outbound import OutboundCalls, running_with_outbound
from ivr.outbound.targets import Target
from ivr.testing.peers import SIPP
from ivr.testing.ports import free_port  # claimed, not bind-0-and-release: see bench.engine_process

HOST = "127.0.0.1"
NO_ANSWER_S = 4.0

def _reply(status: str, *, to_tag: bool = True, cseq: str = "[last_CSeq:]", body: str = "",
           retrans: bool = False) -> str:
    """One SIPp `<send>` of a response to the request last received."""
    extra = (f"Contact: <sip:callee@[local_ip]:[local_port]>\nContent-Type: application/sdp\n"
             f"Content-Length: [len]\n\n{body}") if body else "Content-Length: 0\n"
    attributes = ' retrans="500"' if retrans else ""
    tag = ";tag=[pid]B[call_number]" if to_tag else ""
    return (f"  <send{attributes}><![CDATA[\n\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n"
            f"[last_To:]{tag}\n[last_Call-ID:]\n{cseq}\n{extra}\n]]></send>\n")


_SDP = ("v=0\no=callee 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n"
        "m=audio [media_port] RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n")

SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="outbound_bench_callee">
  <recv request="INVITE">
    <action>
      <ereg regexp="INVITE sip:[0-9]*([0-9])@" search_in="msg" check_it="true" assign_to="all,last"/>
      <ereg regexp="[0-9]+ INVITE" search_in="hdr" header="CSeq:" check_it="true" assign_to="invite_cseq"/>
      <todouble assign_to="kind" variable="last"/>
      <test assign_to="busy" variable="kind" compare="equal" value="8"/>
      <test assign_to="ring" variable="kind" compare="equal" value="9"/>
    </action>
  </recv>
{_reply("180 Ringing")}  <nop next="busy" test="busy"/>
  <nop next="ring" test="ring"/>
{_reply("200 OK", body=_SDP, retrans=True)}  <recv request="ACK"/>
  <recv request="BYE"/>
{_reply("200 OK", to_tag=False)}  <nop next="end"/>
  <label id="busy"/>
{_reply("486 Busy Here", retrans=True)}  <recv request="ACK"/>
  <nop next="end"/>
  <label id="ring"/>
  <recv request="CANCEL"/>
{_reply("200 OK")}{_reply("487 Request Terminated", cseq="CSeq: [$invite_cseq]", retrans=True)}  <recv request="ACK"/>
  <label id="end"/>
  <Reference variables="all,invite_cseq"/>
</scenario>
"""
"""One callee for every target: the last digit of the dialled number says how it behaves."""

REACH_FLOW = """\
id: reach
dialects: [cmn]
queues: [general]
variables: {result_code: ""}
prompts:
  bye: {cmn: 再见。}
nodes:
  mark: {type: set, values: {result_code: "'reached'"}, next: bye}
  bye: {type: hangup, prompt: bye}
"""


def daytime_zone() -> str:
    now = dt.datetime.now(dt.UTC)
    for zone in ("Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Tokyo", "America/Los_Angeles",
                 "Asia/Kolkata", "Pacific/Auckland", "America/Sao_Paulo", "Pacific/Honolulu"):
        if 9 <= now.astimezone(ZoneInfo(zone)).hour <= 18:
            return zone
    raise SystemExit("no time zone is in daytime now")


async def sample_concurrency(outbound: OutboundCalls, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(len(outbound.in_progress))
        await asyncio.sleep(0.1)


async def run(targets: int, rate: float, max_concurrent: int, tmp: pathlib.Path) -> str:
    sipp_port = free_port()
    (tmp / "callee.xml").write_text(SCENARIO)
    sipp = await asyncio.create_subprocess_exec(
        str(SIPP.path), "-sf", str(tmp / "callee.xml"), "-i", HOST, "-p", str(sipp_port), "-mi", HOST,
        "-mp", str(free_port()), "-m", str(targets), "-nostdin", "-trace_err", "-error_file", str(tmp / "sipp.err"),
        "-timeout", f"{int(targets / rate + 120)}s", "-timeout_error", "-max_recv_loops", "10000",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp,
    )
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "reach.yaml").write_text(REACH_FLOW, encoding="utf-8")
    campaigns = tmp / "campaigns"
    campaigns.mkdir()
    (campaigns / "bench.yaml").write_text(
        f'id: bench\nflow: reach\ntrunk: "sip:{{number}}@{HOST}:{sipp_port}"\ntimezone: {daytime_zone()}\n'
        'windows:\n  - {days: [mon, tue, wed, thu, fri, sat, sun], from: "08:00", to: "21:00"}\n'
        f"pacing: {{calls_per_s: {rate}, max_concurrent: {max_concurrent}}}\nno_answer_s: {NO_ANSWER_S}\namd: false\n",
        encoding="utf-8",
    )
    rtp = 20000 + free_port() % 20000
    config = EngineConfig(
        flows_dir=flows, db=str(tmp / "ivr.db"), sip_port=free_port(), http_port=free_port(socket.SOCK_STREAM),
        rtp_port_min=rtp, rtp_port_max=rtp + 4 * max_concurrent + 100, asr_processes=0, asr_prewarm=0,
        campaigns_dir=campaigns, outbound_db=tmp / "outbound.db", demo_backend=False, max_calls=10_000,
    )
    async with running_with_outbound(config) as (_engine, outbound):
        await asyncio.sleep(0.5)  # SIPp binds its port
        cpu0, wall0 = time.process_time(), time.monotonic()
        outbound.scheduler.add_targets(
            "bench", [Target(f"t{i}", f"1390000{i:04d}") for i in range(targets)], dt.datetime.now(dt.UTC))
        outbound.wake()
        samples: list[int] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_concurrency(outbound, samples, stop))
        while len(outbound.ended) < targets:
            await asyncio.sleep(0.2)
            if time.monotonic() - wall0 > targets / rate * 3 + 120:
                break
        stop.set()
        await sampler
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        attempts = outbound.scheduler.store.attempts("bench")
    try:
        await asyncio.wait_for(sipp.wait(), 30)
    except TimeoutError:
        sipp.kill()
        await sipp.wait()
    started = sorted(a.started_at for a in attempts)
    span = (started[-1] - started[0]).total_seconds() if len(started) > 1 else 0.0
    achieved = (len(started) - 1) / span if span else 0.0
    results = Counter(end.result.value for _dial, end in outbound.ended)
    peak = max(samples) if samples else 0
    steady = sorted(samples)[int(len(samples) * 0.95)] if samples else 0
    held = [(a.ended_at - a.started_at).total_seconds() for a in attempts if a.ended_at is not None]
    expected = rate * sum(held) / len(held) if held else 0.0
    # Mean concurrency over the steady part: after the first mean holding time, until the last INVITE.
    lead = int(sum(held) / len(held) / 0.1) if held else 0
    middle = samples[lead : lead + int(span / 0.1) - lead] or samples
    mean_up = sum(middle) / len(middle) if middle else 0.0
    return "\n".join([
        "## Outbound dialling (one campaign, one trunk, SIPp callee)",
        "",
        f"- command: `python -m bench.outbound --targets {targets} --rate {rate:g} --max-concurrent {max_concurrent}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- callee: SIPp UAS (answers 80%, 486 busy 10%, rings out 10% → CANCEL after {NO_ANSWER_S:g} s); "
        "answered calls run a one-prompt flow; AMD off",
        "",
        "| figure | configured | achieved |",
        "|---|---:|---:|",
        f"| calls/s (first to last INVITE) | {rate:g} | {achieved:.2f} ({achieved / rate - 1:+.1%}) |",
        f"| concurrent calls, steady mean (Little: rate × mean hold {expected / rate if rate else 0:.2f} s) | "
        f"{expected:.1f} | {mean_up:.1f} ({mean_up / expected - 1 if expected else 0:+.1%}) |",
        f"| concurrent calls, peak (0.1 s samples) | cap {max_concurrent} | {peak} (p95 {steady}) |",
        f"| attempts finished | {targets} | {len(outbound.ended)} |",
        "",
        f"Results: {', '.join(f'{k} {v}' for k, v in sorted(results.items()))}. "
        f"Engine CPU (this process): {cpu:.1f} s over {wall:.1f} s = {cpu / wall:.0%} of one core "
        f"(max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB).",
    ])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbound", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=200)
    args = parser.parse_args(argv)
    SIPP.require()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-outbound-") as tmp:
        print(asyncio.run(run(args.targets, args.rate, args.max_concurrent, pathlib.Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
