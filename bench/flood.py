"""INVITE flood from one source while a trunk's legitimate calls go on (issue 15).

One process sends raw INVITEs with fresh Call-IDs, branches and tags from 127.0.0.1 at a fixed rate; SIPp
places 40 legitimate calls (`uac_basic.xml`: INVITE, 200, ACK, 200 ms, BYE) from 127.0.0.2 during the
flood. The engine (`ivr serve`, the sip_cps bench flow: a prompt, an RTP session, a record per call) runs
with the SIP edge configured as a production site would: `trunks: [127.0.0.2/32]` (the trunk), INVITEs from
elsewhere answered 403 (`untrusted_invites: forbidden`, so the flood costs parsing and answers until the
source's token bucket is empty: `sip_requests_per_s: 50`, `sip_burst: 100`, then silent drops).
Measured: legitimate calls completed, the engine's CPU (its process, % of one core) and RSS growth.

    .venv/bin/python -m bench.flood [--rates 500,2000,5000] [--seconds 12] [--calls 40]
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from bench.sip_cps import BENCH_FLOW, SCENARIO, _counter, _cpu_s, serve_flow

FLOOD_SOURCE = "127.0.0.1"
TRUNK = "127.0.0.2"
EDGE = ("--set", f"trunks={TRUNK}/32", "--set", "untrusted_invites=forbidden",
        "--set", "sip_requests_per_s=50", "--set", "sip_burst=100")


@dataclass(slots=True, frozen=True)
class FloodRun:
    rate: int
    seconds: float
    sent: int
    calls: int
    successful: int
    failed: int
    engine_cpu_pct: float
    rss_start_mb: float
    rss_peak_mb: float

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_start_mb


def flood(port: int, rate: float, seconds: float, source: str = FLOOD_SOURCE) -> int:
    """Send raw INVITEs (fresh Call-ID, branch, tag each) to 127.0.0.1:`port`; returns how many were sent."""
    template = (
        "INVITE sip:7000@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {src}:{sport};branch=z9hG4bK{tag}{n}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:flood@{src}>;tag=f{tag}{n}\r\nTo: <sip:7000@127.0.0.1>\r\n"
        "Call-ID: {tag}-{n}@flood\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@{src}:{sport}>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setblocking(False)
        sport, tag = sock.getsockname()[1], secrets.token_hex(4)
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                data = template.format(port=port, src=source, sport=sport, tag=tag, n=sent).encode()
                try:
                    sock.sendto(data, ("127.0.0.1", port))
                except (BlockingIOError, ConnectionRefusedError):
                    pass
                sent += 1
            try:  # answers (403s) are read and thrown away, as a flooder would
                while True:
                    sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                pass
            time.sleep(0.002)
        return sent


def _rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def flood_run(engine_pid: int, port: int, rate: int, seconds: float, calls: int, workdir: pathlib.Path) -> FloodRun:
    """Flood for `seconds` while SIPp places `calls` calls from the trunk during it (starting 1 s in)."""
    rss_start = _rss_mb(engine_pid)
    peak = [rss_start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], _rss_mb(engine_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before, wall_before = _cpu_s(engine_pid), time.monotonic()
    flooder = subprocess.Popen(
        [sys.executable, "-c", f"from bench.flood import flood; print(flood({port}, {rate}, {seconds}))"],
        cwd=pathlib.Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)
    call_rate = max(1.0, calls / max(1.0, seconds - 3.0))
    sipp = subprocess.run(
        ["sipp", "-sf", str(SCENARIO), "-i", TRUNK, "-p", "0", "-m", str(calls), "-r", f"{call_rate:.2f}",
         "-rp", "1000", "-l", str(calls), "-nostdin", "-timeout", f"{int(seconds) + 60}s", "-timeout_error",
         "-s", "7000", f"127.0.0.1:{port}"],
        cwd=workdir, capture_output=True, text=True, check=False,
    )
    out, _ = flooder.communicate(timeout=seconds + 60)
    wall = time.monotonic() - wall_before
    cpu = _cpu_s(engine_pid) - cpu_before
    stop.set()
    sampler.join()
    return FloodRun(rate=rate, seconds=seconds, sent=int(out.strip() or 0), calls=calls,
                    successful=_counter(sipp.stdout, "Successful call"), failed=_counter(sipp.stdout, "Failed call"),
                    engine_cpu_pct=100.0 * cpu / wall if wall else 0.0, rss_start_mb=rss_start,
                    rss_peak_mb=peak[0])


def flooded_engine(workdir: pathlib.Path) -> tuple[subprocess.Popen[bytes], int]:
    """`ivr serve` with the bench flow and the edge of a production site (see the module doc)."""
    proc, sip, _http = serve_flow(workdir, BENCH_FLOW, *EDGE)
    return proc, sip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def report(runs: list[FloodRun], command: str) -> str:
    lines = [
        "## INVITE flood from one source, legitimate calls from the trunk (flood)",
        "",
        f"- command: `{command}`",
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs (shared with other work while this ran: "
        "figures are noisy), Python " + platform.python_version(),
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "- flood: raw INVITEs, fresh Call-ID/branch/tag each, from 127.0.0.1 (untrusted) for the run's seconds;"
        " legit: SIPp `uac_basic.xml` from 127.0.0.2 (the trunk), starting 1 s into the flood",
        "- engine: `ivr serve` (bench flow 7000: prompt, RTP session, record) with "
        + " ".join(f"`{a}`" for a in EDGE if a != "--set"),
        "",
        "| flood datagrams/s offered | achieved | legit calls ok | legit failed | engine CPU % of one core |"
        " RSS start MB | RSS growth MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(f"| {r.rate} | {r.achieved_rate:.0f} | {r.successful}/{r.calls} | {r.failed} | "
                     f"{r.engine_cpu_pct:.0f} | {r.rss_start_mb:.0f} | {r.rss_growth_mb:.1f} |")
    lines += ["", "- legit success rate: " + ", ".join(
        f"{r.rate}/s → **{100.0 * r.successful / r.calls:.1f}%**" for r in runs)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rates", default="500,2000,5000")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)
    command = "python -m bench.flood " + " ".join(argv if argv is not None else sys.argv[1:])
    if shutil.which("sipp") is None:
        print("## INVITE flood (flood)\n\nskipped: sipp not installed (apt install sip-tester)")
        return 0
    runs = []
    for rate in (int(r) for r in args.rates.split(",")):
        with tempfile.TemporaryDirectory(prefix="ivr-flood-") as tmp:
            proc, port = flooded_engine(pathlib.Path(tmp))
            try:
                runs.append(flood_run(proc.pid, port, rate, args.seconds, args.calls, pathlib.Path(tmp)))
            finally:
                _stop(proc)
    print(report(runs, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
