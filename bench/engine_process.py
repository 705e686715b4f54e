"""The engine as a benchmark's subject: `ivr serve` with one flow on free loopback ports, and its CPU time.

Shared by `bench.sip_cps`, `bench.media_calls` (and the benches that borrow from them), so every bench
starts the engine the same way: the flow in a temp flows dir, logs at warning as JSON into the work
dir, the number of worker processes always named (`--workers`; the engine's default may be one per
core), and the bench waiting until the node is ready (worker 0's /readyz: every worker has joined the
SIP port).
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

# Not bind-0-and-release: the kernel hands that number to any outgoing connection or another process's probe
# before `ivr serve` binds it, and a node's workers bind the ports above it too. The test suite's pool claims
# a block outside the ephemeral range, so a bench run beside the suite (or a bench test inside it) is safe.
from ivr.testing.ports import free_port as free_port  # re-exported: the benches import it from here

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stats() -> list[tuple[int, list[str]]]:
    """(pid, fields after the command name) of every process."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            found.append((int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()))
        except (OSError, IndexError):
            continue
    return found


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and its direct children (an engine's workers, Kamailio's)."""
    return sum((int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
               for proc, fields in _stats() if proc == pid or fields[1] == str(pid))


def children(pid: int) -> list[int]:
    return [proc for proc, fields in _stats() if fields[1] == str(pid)]


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_ready(http_port: int, timeout_s: float = 300.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until worker 0's /readyz answers 200 (every worker has joined the SIP port); with `proc` (the engine),
    `RuntimeError` as soon as it has exited (a worker that could not bind its port stops the node)."""
    deadline = time.monotonic() + timeout_s
    while not _get_ok(f"http://127.0.0.1:{http_port}/readyz"):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"ivr serve exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"ivr serve not ready in {timeout_s:g} s")
        time.sleep(0.2)


def serve_flow(workdir: pathlib.Path, flow_yaml: str, *extra: str,
               root: pathlib.Path = ROOT) -> tuple[subprocess.Popen[bytes], int, int]:
    """`ivr serve` on free loopback ports with `flow_yaml` as its only flow (`extra`: more serve arguments,
    e.g. `--set trunks=...`; `root`: the checkout whose `ivr` runs); (process, SIP port, HTTP port) once it
    answers /healthz."""
    flows = workdir / "flows"
    flows.mkdir()
    (flows / "bench.yaml").write_text(flow_yaml)
    sip, http = free_port(), free_port(socket.SOCK_STREAM)
    log = (workdir / "engine.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--log-level", "warning", "--log-json", "serve", "--flows", str(flows),
         "--sip", f"127.0.0.1:{sip}", "--http", f"127.0.0.1:{http}", "--db", str(workdir / "ivr.db"), *extra],
        cwd=root, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ivr serve exited with {proc.returncode}: see {workdir / 'engine.log'}")
        if _get_ok(f"http://127.0.0.1:{http}/healthz"):
            return proc, sip, http
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("ivr serve did not become ready in 120 s")


def start_engine(workdir: pathlib.Path, flow_yaml: str, *extra: str, workers: int = 1,
                 root: pathlib.Path = ROOT) -> tuple[subprocess.Popen[bytes], int, int]:
    """`serve_flow` with `--workers N`, once the whole node is ready: (supervisor or engine process, SIP
    port, worker 0's HTTP port)."""
    proc, sip, http = serve_flow(workdir, flow_yaml, "--workers", str(workers), *extra, root=root)
    wait_ready(http, proc=proc)
    return proc, sip, http
