"""SIP calls per second: SIPp drives INVITE -> 200 -> ACK -> BYE (no media) at rising rates against a
UAS process (`python -m ivr.sip.harness`: our UserAgent answering every call) on loopback.

For each rate it runs `rate * seconds` calls and records failed calls, the rate SIPp achieved, call
setup time (INVITE sent -> 200 received, SIPp's `setup` response-time measure from `-trace_rtt`; SIPp
timestamps at millisecond granularity) and the UAS process's CPU use. The sustained rate is the
highest one with zero failed calls that SIPp actually achieved (within 10%); the ladder stops at the
first rate that fails either way. SIPp itself is single-threaded and shares the two cores, so at high
rates it can be the limit: compare "achieved cps" with the UAS CPU column.

    .venv/bin/python -m bench.sip_cps [--rates 50,100,200,300,400] [--seconds 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "tests" / "integration" / "sip" / "scenarios" / "uac_basic.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Step:
    rate: int
    calls: int
    successful: int
    failed: int
    achieved_cps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    uas_cpu_pct: float
    sipp_rc: int

    @property
    def clean(self) -> bool:
        """Every call succeeded and SIPp kept up with the offered rate (within 10%)."""
        return (self.sipp_rc == 0 and self.failed == 0 and self.successful == self.calls
                and self.achieved_cps >= 0.9 * self.rate)


def _cpu_s(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _counter(screen: str, name: str) -> int:
    found = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(found[-1]) if found else 0


def _start_uas() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "ivr.sip.harness", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"listening UDP \S+ (\d+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"harness did not start: {line!r}")
    return proc, int(match.group(1))


def _run_step(uas_pid: int, port: int, rate: int, calls: int, workdir: pathlib.Path) -> Step:
    step_dir = workdir / f"r{rate}"
    step_dir.mkdir()
    args = [
        "sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", "0", "-m", str(calls), "-r", str(rate),
        "-l", str(max(calls, 100)), "-nostdin", "-timer_resol", "1", "-trace_rtt", "-rtt_freq", "1",
        "-timeout", f"{int(calls / rate) + 60}s", "-timeout_error", "-s", "100", f"127.0.0.1:{port}",
    ]
    cpu_before, wall_before = _cpu_s(uas_pid), time.monotonic()
    done = subprocess.run(args, cwd=step_dir, capture_output=True, text=True, check=False)
    wall = time.monotonic() - wall_before
    cpu = _cpu_s(uas_pid) - cpu_before
    times: list[float] = []
    for rtt in step_dir.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2] == "setup":
                times.append(float(parts[1]))
    rate_match = re.findall(r"Call Rate\s*\|\s*[\d.]+ cps\s*\|\s*([\d.]+) cps", done.stdout)
    return Step(
        rate=rate, calls=calls, successful=_counter(done.stdout, "Successful call"),
        failed=_counter(done.stdout, "Failed call"),
        achieved_cps=float(rate_match[-1]) if rate_match else 0.0,
        p50_ms=_percentile(times, 0.50), p99_ms=_percentile(times, 0.99), max_ms=max(times, default=0.0),
        uas_cpu_pct=100.0 * cpu / wall if wall else 0.0, sipp_rc=done.returncode,
    )


def report(steps: Sequence[Step], command: str) -> str:
    sustained = max((s for s in steps if s.clean), key=lambda s: s.rate, default=None)
    lines = [
        "## SIP calls per second (sip_cps)",
        "",
        f"- command: `{command}`",
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "- load: SIPp `uac_basic.xml` (INVITE, 100, 180, 200, ACK, 200 ms, BYE, 200; no media) against "
        "`python -m ivr.sip.harness` (UDP, uvloop) on loopback; setup = INVITE sent to 200 received",
        "",
        "| offered cps | calls | failed | achieved cps | setup p50 ms | setup p99 ms | setup max ms "
        "| UAS CPU % of one core |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.rate} | {s.calls} | {s.calls - s.successful} | {s.achieved_cps:.1f} "
            f"| {s.p50_ms:.0f} | {s.p99_ms:.0f} | {s.max_ms:.0f} | {s.uas_cpu_pct:.0f} |"
        )
    lines.append("")
    if sustained is None:
        lines.append("**Sustained: none of the offered rates completed without failed calls.**")
    else:
        lines.append(
            f"**Sustained: {sustained.rate} calls/s with zero failed calls** "
            f"(setup p50 {sustained.p50_ms:.0f} ms, p99 {sustained.p99_ms:.0f} ms; "
            f"UAS at {sustained.uas_cpu_pct:.0f}% of one core)."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sip_cps", description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="50,100,200,300,400,600", help="comma-separated offered calls/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of calls per rate")
    parser.add_argument("--max-calls", type=int, default=5000, help="cap on calls per rate")
    args = parser.parse_args(argv)
    command = "python -m bench.sip_cps " + " ".join(argv if argv is not None else sys.argv[1:])
    if shutil.which("sipp") is None:
        print("## SIP calls per second (sip_cps)\n\nskipped: sipp not installed (apt install sip-tester)")
        return 1
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    uas, port = _start_uas()
    steps: list[Step] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sip_cps_") as tmp:
            for rate in rates:
                calls = min(int(rate * args.seconds), args.max_calls)
                step = _run_step(uas.pid, port, rate, calls, pathlib.Path(tmp))
                steps.append(step)
                if not step.clean:
                    break
    finally:
        uas.send_signal(signal.SIGTERM)
        try:
            uas.wait(10)
        except subprocess.TimeoutExpired:
            uas.kill()
    print(report(steps, command.strip()))
    return 0 if any(s.clean for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
