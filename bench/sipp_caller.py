"""bench.speech_load's second load generator: SIPp (a peer in C) playing the speaking caller's RTP from a pcap.

The standard way to load a voice platform: SIPp places the calls (bench/sipp/speech_caller.xml) and replays
recorded caller audio with `play_pcap_audio`. The pcap is built here from the same clip `ivr load` says
(tests/scenarios/claim_en_speech.yaml: Festival's voice, G.711 u-law) and covers the whole call as a phone
sends it: silence through the Mandarin greeting, the need at the moment `ivr load`'s caller says it, silence
for the 17 s the caller stays on the line, one RTP stream (one SSRC, sequence and timestamps unbroken).

When the caller speaks: `ivr load`'s caller waits for the IVR's prompts and then 1.5 s of quiet. Each SIPp
call comes from a new number, so every caller hears the same Mandarin greeting + question: 21.4 s of audio from
the answer (measured, `ivr call`, 2026-12-07), which `ivr load`'s caller answers 22.2 s after the answer. (The
engine remembers a number's dialect when its call ends: `ivr load`'s callers share one number, so in a 30 s
run they all hear the Mandarin greeting too, and a later run on the same engine would greet them in English,
7 s shorter.) A caller whose greeting starts late under load talks over the question's prompt, which the
hotline hears at once (the `need` node's lead-in and prompt are barge-in). The offer has telephone-event as a
phone's does: without it the engine listens for in-band keys in all of the caller's audio (Goertzel on every
frame: ~40 ms more engine CPU a call, py-spy and /proc, 2026-12-07).

SIPp's limits, as read in its 3.6.1 source (`send_packets.c`, `call.cpp`): every `play_pcap_audio` runs in its own
thread with its own raw UDP socket (root needed), cancelled when the call ends; at 10 calls/s x 30 s of calls
lasting ~42 s that is ~300 threads and raw sockets at once (peak 301 threads measured). A raw UDP socket gets a
copy of every UDP datagram on the machine, so each one adds to every loopback datagram's kernel cost (a probe:
4.2 -> 7.3 us CPU per datagram sent with 400 unread raw sockets open): part of what this generator costs shows up
in the engine's figure. SIPp's setup times come from `-trace_rtt`, on CLOCK_MONOTONIC_COARSE (4 ms steps here).
SIPp does not read the RTP the engine sends it (no `-rtp_echo`): the caller-side loss `ivr load` reports
does not exist here; the machine's UDP receive drops outside SIPp's own media socket are reported instead.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.rtp_pcap import Endpoints, RtpStream, pcap_bytes, rtp_packets
from ivr.media.g711 import PCMU
from ivr.testing.callcheck import fetch_record
from ivr.testing.caller import Say
from ivr.testing.scenario import Scenario, check

TEMPLATE = pathlib.Path(__file__).resolve().parent / "sipp" / "speech_caller.xml"
SPEAK_AT_S = 22.2
"""Seconds from the answer to the first word: when `ivr load`'s caller says its need after the Mandarin greeting."""
TAIL_S = 3.0
"""Silence in the pcap past the caller's BYE (the play thread is cancelled when the call ends)."""
MAX_CALLS = 5000
MAX_CONCURRENT = 2000
RECORD_FETCHES_AT_ONCE = 8
CALL_ID_FORMAT = "speech-load-%u-%p@%s"


def call_id(number: int, pid: int, host: str = "127.0.0.1") -> str:
    """The Call-ID SIPp gives call `number` under `-cid_str CALL_ID_FORMAT`."""
    return f"speech-load-{number}-{pid}@{host}"


@dataclass(slots=True, frozen=True)
class CallerAudio:
    """What one SIPp caller sends, and when it hangs up."""

    pcap: bytes
    speech_s: float
    bye_after_s: float
    """From the answer (the ACK) to the caller's BYE: speaking time + the clip + the scenario's linger."""


def say_step(scenario: Scenario) -> Say:
    says = [step for step in scenario.steps if isinstance(step, Say)]
    if len(says) != 1:
        raise ValueError(f"{scenario.source}: the SIPp caller says one thing, this scenario has {len(says)} says")
    return says[0]


def caller_audio(speech: NDArray[np.int16], linger_s: float, *,
                 speak_at_s: float = SPEAK_AT_S) -> CallerAudio:
    """The whole call's RTP as a pcap: silence, `speech` from `speak_at_s`, silence to the BYE and a little past it."""
    frame = 160
    silence = PCMU.silence(frame)
    before = round(speak_at_s * 8000 / frame)
    spoken = PCMU.encode_frames(speech, frame)
    speech_s = len(spoken) * frame / 8000
    bye_after_s = before * frame / 8000 + speech_s + linger_s
    after = round((linger_s + TAIL_S) * 8000 / frame)
    payloads = [silence] * before + list(spoken) + [silence] * after
    stream = RtpStream(payload_type=PCMU.payload_type, ssrc=0x5EED5A1D, first_sequence=4711, first_timestamp=160_000)
    return CallerAudio(pcap_bytes(rtp_packets(stream, payloads), Endpoints()), speech_s, bye_after_s)


def write_scenario(workdir: pathlib.Path, audio: CallerAudio) -> pathlib.Path:
    """The scenario and its pcap in `workdir` (SIPp finds the pcap next to the scenario)."""
    (workdir / "caller.pcap").write_bytes(audio.pcap)
    text = TEMPLATE.read_text().replace("__PCAP__", "caller.pcap").replace(
        "__BYE_AFTER_MS__", str(round(audio.bye_after_s * 1000)))
    path = workdir / "speech_caller.xml"
    path.write_text(text)
    return path


def sipp_command(scenario: pathlib.Path, target: str, *, cps: float, calls: int, media_port: int,
                 sip_port: int, service: str, timeout_s: float) -> list[str]:
    """SIPp as the load generator: `calls` at `cps`, loopback only, every wait bounded."""
    if not 0 < cps <= 100:
        raise ValueError(f"--cps {cps:g}: the SIPp speech caller runs 0 < cps <= 100")
    if not 1 <= calls <= MAX_CALLS:
        raise ValueError(f"{calls} calls: the SIPp speech caller runs 1 to {MAX_CALLS}")
    host = "127.0.0.1"
    return ["sipp", "-sf", str(scenario), "-i", host, "-p", str(sip_port), "-mi", host, "-mp", str(media_port),
            "-t", "u1", "-s", service, "-r", f"{cps:g}", "-rp", "1000", "-m", str(calls), "-l", str(MAX_CONCURRENT),
            "-cid_str", CALL_ID_FORMAT, "-nostdin", "-trace_rtt", "-rtt_freq", "1", "-trace_err",
            "-timeout", f"{int(timeout_s)}s", "-timeout_error", target]


@dataclass(slots=True)
class SippWatch:
    """What is read from /proc while SIPp runs: its peak thread count, and its media socket's receive drops."""

    peak_threads: int = 0
    media_drops: int = 0

    def sample(self, pid: int, media_port: int) -> None:
        try:
            status = pathlib.Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        found = re.search(r"^Threads:\s+(\d+)", status, re.M)
        if found:
            self.peak_threads = max(self.peak_threads, int(found.group(1)))
        self.media_drops = max(self.media_drops, socket_drops(media_port))


def socket_drops(port: int) -> int:
    """Receive drops of the UDP socket bound to 127.0.0.1:`port` (0 when there is none)."""
    local = f"0100007F:{port:04X}"
    for line in pathlib.Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 12 and fields[1] == local:
            return int(fields[-1])
    return 0


def udp_receive_errors() -> int:
    """The machine's UDP datagrams dropped on receive (a full socket buffer) since boot."""
    snmp = pathlib.Path("/proc/net/snmp").read_text().splitlines()
    lines = [line.split() for line in snmp if line.startswith("Udp:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["RcvbufErrors"])


def setup_ms(rtt_csv: str) -> dict[str, float]:
    """Percentiles of INVITE sent -> 200 OK from SIPp's `-trace_rtt` file (`date_ms;rtt_ms;rtd_no` lines)."""
    times = []
    for line in rtt_csv.splitlines():
        parts = line.split(";")
        if len(parts) >= 2:
            try:
                times.append(float(parts[1]))
            except ValueError:
                continue  # the header
    if not times:
        return {}
    values = np.array(times, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(values, q)), 1) for q in (50, 95, 99)} | {
        "max": round(float(values.max()), 1)}


@dataclass(slots=True)
class SippRun:
    """One SIPp load run and the engine's verdict on each of its calls."""

    calls: int
    returncode: int = 0
    wall_s: float = 0.0
    setup: dict[str, float] = field(default_factory=dict)
    answered: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failed_records: Counter[str] = field(default_factory=Counter)
    """What the failed calls' records say instead, by kind."""
    watch: SippWatch = field(default_factory=SippWatch)
    cpu_s: float = 0.0
    """SIPp's CPU (user + system, all its threads) over the run."""
    udp_drops: int = 0
    """UDP receive drops on the machine during the run, outside SIPp's own (unread) media socket."""

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "answered": self.answered, "failed": sum(self.failures.values()),
                "failures": dict(self.failures),
                "failed_records": dict(self.failed_records.most_common(8)),
                "setup_ms": self.setup, "sipp_returncode": self.returncode,
                "sipp_peak_threads": self.watch.peak_threads,
                "sipp_cpu_s": round(self.cpu_s, 3), "wall_s": round(self.wall_s, 1),
                "audio": {"udp_receive_drops": self.udp_drops}}


def _running(pid: int) -> bool:
    """True while `pid` (a child not yet reaped) has not exited; it is reaped by `os.wait4` afterwards."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def run_sipp(workdir: pathlib.Path, scenario: Scenario, speech: NDArray[np.int16], *,
             sip_port: int, media_port: int, local_port: int, cps: float, seconds: float) -> tuple[SippRun, int]:
    """SIPp's calls against the engine at 127.0.0.1:`sip_port`; (the run, SIPp's pid) once SIPp has exited."""
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp not installed (apt install sip-tester)")
    audio = caller_audio(speech, scenario.linger_s)
    path = write_scenario(workdir, audio)
    calls = max(1, int(cps * seconds))
    timeout_s = calls / cps + audio.bye_after_s + 120
    command = sipp_command(path, f"127.0.0.1:{sip_port}", cps=cps, calls=calls, media_port=media_port,
                           sip_port=local_port, service="95519", timeout_s=timeout_s)
    run = SippRun(calls)
    drops_before = udp_receive_errors()
    started = time.monotonic()
    with (workdir / "sipp.out").open("wb") as out:
        proc = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        try:
            while _running(proc.pid):
                run.watch.sample(proc.pid, media_port)
                if time.monotonic() - started > timeout_s + 30:
                    proc.kill()
                time.sleep(0.5)
        finally:
            if _running(proc.pid):
                proc.kill()
            # SIPp's own CPU (all its threads), from its exit status rather than this process's children total
            # (which also holds the Festival render of the clip).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
    run.wall_s = time.monotonic() - started
    run.returncode = proc.returncode
    run.cpu_s = usage.ru_utime + usage.ru_stime
    run.udp_drops = max(0, udp_receive_errors() - drops_before - run.watch.media_drops)
    rtt = sorted(workdir.glob("speech_caller_*_rtt.csv"))
    run.setup = setup_ms(rtt[0].read_text()) if rtt else {}
    return run, proc.pid


def _summary(record: dict[str, Any] | Any) -> str:
    """What a failed call's record says instead (for the report's `failed_records`)."""
    if record is None:
        return "no record"
    path = record.get("path") or []
    return (f"queue={record.get('queue')} intent={record.get('intent')} breakpoint={record.get('breakpoint_node')} "
            f"outcome={record.get('outcome')} path=...{'>'.join(path[-3:])}")


async def judge_calls(run: SippRun, scenario: Scenario, pid: int, api: str) -> None:
    """Each call's finished record from the engine, checked as `ivr load` checks it (ivr.testing.scenario.check)."""
    gate = asyncio.Semaphore(RECORD_FETCHES_AT_ONCE)

    async def one(number: int) -> None:
        async with gate:
            record, _, why = await fetch_record(api, call_id(number, pid))
        if record is not None:
            run.answered += 1
        failures = check(scenario.expect, record, why)
        if failures:
            run.failures[failures[0].split(", but")[0]] += 1
            run.failed_records[_summary(record)] += 1

    await asyncio.gather(*(one(n) for n in range(1, run.calls + 1)))


def load(workdir: pathlib.Path, scenario: Scenario, *, sip_port: int, media_port: int, local_port: int,
         cps: float, seconds: float, api: str, speech: NDArray[np.int16] | None = None
         ) -> dict[str, Any]:
    """A SIPp speech load run judged by the engine's records: the same report keys as `ivr load --json`."""
    if speech is None:
        from ivr.testing.voices import speak

        step = say_step(scenario)
        speech = speak(step.text, step.language or scenario.dialect)
    run, pid = run_sipp(workdir, scenario, speech, sip_port=sip_port, media_port=media_port, local_port=local_port,
                        cps=cps, seconds=seconds)
    asyncio.run(judge_calls(run, scenario, pid, api))
    return run.to_dict()


def sipp_version() -> str:
    """`sipp -v`'s version line."""
    out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10, check=False).stdout
    return next((line.strip() for line in out.splitlines() if "SIPp v" in line), "unknown")


__all__: Sequence[str] = ["CallerAudio", "SippRun", "call_id", "caller_audio", "load", "setup_ms", "sipp_command",
                          "sipp_version", "socket_drops", "write_scenario"]
