"""A hotline cluster on loopback for tests and benchmarks (docs/CLUSTER.md): PostgreSQL, Redis, engine
nodes (`ivr serve` on 127.0.0.2, .3, ...) and Kamailio (deploy/kamailio/cluster.cfg) in front.

Everything is a real program started here and stopped on exit; scripts/cluster.sh is the same topology
on fixed ports for a person to play with.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.testing import peers
from ivr.testing import ports as test_ports

ROOT = pathlib.Path(__file__).resolve().parents[3]
CLUSTER_CFG = ROOT / "deploy" / "kamailio" / "cluster.cfg"
HOTLINE = "95519"
AGENT_LINE = "95520"
"""The number of AGENT_FLOW: straight into queue `general`, for the agents' callers."""
READY_TIMEOUT_S = 120.0
CLUSTER_TIMEOUT_S = 900
"""Each cluster test's pytest timeout: its own run (up to ~2.5 min) plus waiting for the others' turns
(conftest.py: one cluster at a time on this machine)."""
PROXY_HOST = "127.0.0.1"


def ahead_of_the_suite() -> None:
    """Run a cluster process (engines, Kamailio, SIPp) ahead of the other test workers on the shared cores.

    Three engines, Kamailio and 20 calls/s with media are judged on every call, and Kamailio takes a node
    that answers nothing for 2 s out: in full runs beside other xdist workers one caller in ~1,200 failed
    (never when the cluster tests ran alone). Raising priority needs root (as the suite runs here); elsewhere
    the process keeps the default."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, -5)


def node_host(index: int) -> str:
    """Node 1 listens on 127.0.0.2, node 2 on 127.0.0.3... (the proxy keeps 127.0.0.1)."""
    return f"127.0.0.{index + 1}"


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on `host` for UDP and TCP alike (the engine opens both for SIP), claimed machine-wide
    for this process (ivr.testing.ports: no other xdist worker or peer is handed it meanwhile)."""
    return test_ports.free_port(kind, host=host)


# --- PostgreSQL ---------------------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root without runuser: cannot start PostgreSQL as a non-root user")
    return [runuser, "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (Debian's newest binaries, or $IVR_PG_BIN) on a free loopback
    port, user `ivr` trusted, no fsync; yields the DSN of its `postgres` database."""
    pg_bin = pathlib.Path(peers.POSTGRESQL.require())
    base = pathlib.Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port(kind=socket.SOCK_STREAM)
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "ivr", "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql://ivr@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def new_database(dsn: str, name: str) -> str:
    """Create database `name` next to `dsn`'s; its DSN."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return dsn.rsplit("/", 1)[0] + "/" + name


def stored_calls(db: str) -> dict[str, tuple[str, str | None, bool]]:
    """Every stored call: call_id → (node_id, outcome, in_progress)."""
    import psycopg

    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT call_id, node_id, outcome, in_progress FROM calls").fetchall()
    return {str(r[0]): (str(r[1]), None if r[2] in (None, "") else str(r[2]), bool(r[3])) for r in rows}


def stored_once_closed(db: str, timeout_s: float, node_id: str | None = None
                       ) -> dict[str, tuple[str, str | None, bool]]:
    """The stored calls once none (of `node_id`'s) is in progress any more: the nodes' store writers
    and, for a dead node, the survivor that closes its records after the lease, write on their own."""
    deadline = time.monotonic() + timeout_s
    while True:
        calls = stored_calls(db)
        if not any(live and node_id in (None, node) for node, _, live in calls.values()) \
                or time.monotonic() > deadline:
            return calls
        time.sleep(0.5)  # other processes' writes: nothing here to wait on but the database


# --- engine nodes -------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    node_id: str
    host: str
    sip_port: int
    http_port: int
    process: subprocess.Popen[bytes]
    log: pathlib.Path
    token: str

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.api + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def calls(self, page_size: int = 500) -> list[dict[str, Any]]:
        """Every call `/api/calls` lists (all its pages, newest first)."""
        listed: list[dict[str, Any]] = []
        cursor = ""
        while True:
            after = f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""
            page = self.get(f"/api/calls?limit={page_size}{after}")
            listed += page["calls"]
            cursor = page["next_cursor"] or ""
            if not cursor:
                return listed

    def ready(self) -> bool:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{self.api}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        return False

    def kill(self) -> None:
        """SIGKILL: the machine died (no drain, no records closed, no ACD goodbye)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        """SIGTERM (drain) and wait; the exit code. A node already dead keeps its code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_node(index: int, workdir: pathlib.Path, *, db: str, redis_url: str, token: str,
               flows_dir: pathlib.Path | None = None, extra_env: dict[str, str] | None = None,
               ports: tuple[int, int] | None = None) -> Node:
    """`ivr serve` as node-<index> on its own loopback address (SIP, HTTP and RTP there); not waited for.
    `ports` (SIP, HTTP): a node restarted where the proxy's dispatcher list expects it."""
    host = node_host(index)
    sip_port, http_port = ports or (free_port(host), free_port(host, socket.SOCK_STREAM))
    node_id = f"node-{index}"
    log = workdir / f"{node_id}.log"
    rtp_first = 20000 + (index - 1) * 3000
    env = dict(
        os.environ, PYTHONUNBUFFERED="1", IVR_API_TOKEN=token, IVR_LOG_PII="true", IVR_NODE_ID=node_id,
        IVR_DB=db, IVR_ACD_BACKEND="redis", IVR_REDIS_URL=redis_url, IVR_SIP_HOST=host,
        IVR_SIP_PORT=str(sip_port), IVR_HTTP_HOST=host, IVR_HTTP_PORT=str(http_port),
        IVR_RTP_PORT_MIN=str(rtp_first), IVR_RTP_PORT_MAX=str(rtp_first + 2999), **(extra_env or {}),
    )
    if flows_dir is not None:  # else the demo hotline (with its demo data back end)
        env.update(IVR_FLOWS_DIR=str(flows_dir), IVR_DEMO_BACKEND="false")
    process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "--log-json", "serve"], cwd=ROOT,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, preexec_fn=ahead_of_the_suite)
    return Node(node_id, host, sip_port, http_port, process, log, token)


def wait_ready(nodes: Sequence[Node], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    for node in nodes:
        while not node.ready():
            if node.process.poll() is not None:
                raise AssertionError(f"{node.node_id} exited with {node.process.returncode}:\n"
                                     f"{node.log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.node_id} not ready in {timeout_s} s:\n"
                                     f"{node.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)  # a child process starting: nothing to wait on but its port


# --- Kamailio -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Proxy:
    port: int
    log: pathlib.Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout_s: float) -> float:
        """Wait until Kamailio's log holds `text` (e.g. `engine down: sip:...`); the time.time() it did."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f"kamailio logged no {text!r} in {timeout_s} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)  # another process's log: nothing to wait on but the file
        return time.time()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_proxy(workdir: pathlib.Path, nodes: Sequence[Node], *, port: int | None = None) -> Proxy:
    """Kamailio with cluster.cfg, the `nodes` as dispatcher set 1; returns once it holds its port."""
    folder = workdir / "kamailio"
    folder.mkdir(exist_ok=True)
    destinations = folder / "dispatcher.list"
    destinations.write_text("".join(f"1 sip:{n.host}:{n.sip_port}\n" for n in nodes))
    port = port or free_port(PROXY_HOST)
    log = folder / "kamailio.log"
    process = subprocess.Popen(
        [peers.KAMAILIO.require(), "-f", str(CLUSTER_CFG), "-DD", "-E", "-m", "64", "-M", "8", "-Y", str(folder),
         "-A", f"LISTEN=udp:{PROXY_HOST}:{port}", "-A", f'DISPATCHER_LIST="{destinations}"',
         "-A", f'HOTLINE="^({HOTLINE}|{AGENT_LINE})$"'],
        stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=folder,
        preexec_fn=ahead_of_the_suite,
    )
    proxy = Proxy(port, log, process)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise AssertionError(f"kamailio exited with {process.returncode}:\n{proxy.output()[-3000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((PROXY_HOST, port))
            except OSError:
                return proxy
        if time.monotonic() > deadline:
            proxy.stop()
            raise AssertionError(f"kamailio did not bind {PROXY_HOST}:{port} in 15 s:\n{proxy.output()[-3000:]}")
        time.sleep(0.1)


# --- the whole cluster --------------------------------------------------------------------------


@dataclass(slots=True)
class Cluster:
    db: str
    redis_url: str
    nodes: list[Node]
    proxy: Proxy
    workdir: pathlib.Path
    token: str = field(repr=False, default="")

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def survivors(self) -> list[Node]:
        return [n for n in self.nodes if n.process.poll() is None]


@contextlib.contextmanager
def running_cluster(workdir: pathlib.Path, *, db: str, redis_url: str, flows_dir: pathlib.Path | None = None,
                    nodes: int = 3, proxy_port: int | None = None,
                    extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """`nodes` engines on one database and one Redis, behind Kamailio; every part stopped on exit
    (engines by SIGTERM, their exit codes left for the caller to judge). `extra_env`: IVR_<KEY>
    settings for every node (agents_file, queues_file...)."""
    token = secrets.token_urlsafe(24)

    def start(index: int) -> Node:
        return start_node(index, workdir, db=db, redis_url=redis_url, token=token, flows_dir=flows_dir,
                          extra_env=extra_env)

    started: list[Node] = []
    proxy: Proxy | None = None
    try:
        # One node first: it applies the migrations and seeds the ACD log; the others then join it.
        started.append(start(1))
        wait_ready(started)
        for index in range(2, nodes + 1):
            started.append(start(index))
        wait_ready(started)
        proxy = start_proxy(workdir, started, port=proxy_port)
        yield Cluster(db, redis_url, started, proxy, workdir, token)
    finally:
        if proxy is not None:
            proxy.stop()
        for node in started:
            node.stop()


# --- callers ------------------------------------------------------------------------------------

CLUSTER_FLOW = f"""\
id: cluster
version: "1"
description: cluster test - a long prompt the caller's BYE cuts short
numbers: ["{HOTLINE}"]
dialects: [en]
default_dialect: en
queues: [general]
on_error: {{queue: general}}
start: hello
prompts:
  hello:
    en: >-
      Thank you for calling the hotline. All of our agents are helping other callers right now.
      Please stay on the line, your call matters to us and will be answered in the order it was received.
      While you wait, you can find answers to most questions about claims and policies on our website.
nodes:
  hello: {{type: play, prompt: hello, next: bye}}
  bye: {{type: hangup}}
"""
AGENT_FLOW = f"""\
id: cluster_agents
version: "1"
description: cluster test - straight to an agent, whom the caller's BYE leaves
numbers: ["{AGENT_LINE}"]
dialects: [en]
default_dialect: en
queues: [general]
on_error: {{queue: general}}
start: to_agent
prompts:
  hold:
    en: Please hold.
nodes:
  to_agent: {{type: queue, queue: general, prompt: hold, answered: bye, callback: bye, unavailable: bye}}
  bye: {{type: hangup}}
"""
SCENARIO = pathlib.Path(__file__).resolve().parent / "scenarios" / "uac_hold.xml"
BIND_ATTEMPTS = 3


def write_flows(workdir: pathlib.Path) -> pathlib.Path:
    """A flows folder with CLUSTER_FLOW (a prompt longer than any caller's hold, on HOTLINE) and
    AGENT_FLOW (queue `general`, on AGENT_LINE)."""
    flows = workdir / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "cluster.yaml").write_text(CLUSTER_FLOW)
    (flows / "agents.yaml").write_text(AGENT_FLOW)
    return flows


@dataclass(slots=True)
class CallerRun:
    """SIPp callers through the proxy: when each call started (seconds after `started_wall`, SIPp's
    clock) and which ended well (200 to its BYE)."""

    process: subprocess.Popen[str]
    folder: pathlib.Path
    started_wall: float

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout_s)

    def placing(self, timeout_s: float = 15.0) -> bool:
        """Wait until SIPp has started its first call (it has bound its ports); False if it exited first."""
        deadline = time.monotonic() + timeout_s
        while not any(p[0] == "start" for p in self._log_lines()):
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise AssertionError(f"SIPp placed no call in {timeout_s} s:\n{self.output()[-2000:]}")
            time.sleep(0.02)  # another process starting: nothing to wait on but its log file
        return True

    def output(self) -> str:
        out = self.folder / "sipp.out"
        return out.read_text(errors="replace") if out.exists() else ""

    def _log_lines(self) -> list[list[str]]:
        return [line.split() for path in self.folder.glob("*_logs.log")
                for line in path.read_text(errors="replace").splitlines() if line.strip()]

    def starts(self) -> dict[str, float]:
        """Call-ID → wall time (time.time()) its INVITE was first sent."""
        return {p[1]: self.started_wall + int(p[2]) / 1000 for p in self._log_lines() if p[0] == "start"}

    def succeeded(self) -> set[str]:
        return set(self.ends())

    def ends(self) -> dict[str, float]:
        """Call-ID → wall time its BYE was answered, for each call that ended well."""
        return {p[1]: self.started_wall + int(p[2]) / 1000 for p in self._log_lines() if p[0] == "ok"}

    def setup_ms(self) -> list[float]:
        """INVITE sent → 200 received, per successful call (SIPp's -trace_rtt)."""
        times = []
        for rtt in self.folder.glob("*_rtt.csv"):
            for line in rtt.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 3:
                    times.append(float(parts[1]))
        return times


def start_callers(folder: pathlib.Path, target: str, *, rate: float, calls: int, hold_s: float,
                  service: str = HOTLINE) -> CallerRun:
    """SIPp placing `calls` calls at `rate` per second to `target` (host:port), each with media (RTP
    echoed back) and hung up `hold_s` after the answer."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "uac_hold.xml"
    scenario.write_text(SCENARIO.read_text().replace("__HOLD_MS__", str(int(hold_s * 1000))))
    for _attempt in range(BIND_ATTEMPTS):
        sip_port, media_port = free_port(), free_port()
        args = [
            peers.SIPP.require(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(sip_port),
            "-mi", "127.0.0.1", "-mp", str(media_port), "-rtp_echo", "-m", str(calls), "-r", str(rate),
            "-l", str(max(10, int(rate * (hold_s + 10)))), "-nostdin", "-trace_logs", "-trace_err",
            # A 180 the proxy relays just after the 200 (its UDP workers race) is a stray provisional a UAC
            # ignores (RFC 3261 13.2.2.4 only acts on 2xx after a final); SIPp would abort the call on it.
            "-default_behaviors", "all,-abortunexp",
            "-trace_rtt", "-rtt_freq", "1", "-timeout", f"{int(calls / rate + hold_s) + 90}s", "-timeout_error",
            "-s", service, target,
        ]
        out = (folder / "sipp.out").open("w")
        started = time.time()
        process = subprocess.Popen(args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, text=True,
                                   preexec_fn=ahead_of_the_suite)
        run = CallerRun(process, folder, started)
        if run.placing():
            return run
        # SIPp binds -mp and -mp + 2 (its video echo): the second is not a port the pool handed us, and
        # another process may hold it (errno 98). Anything else is a real failure.
        if "Address already in use" not in run.output() + _errors(folder):
            raise AssertionError(f"SIPp exited with {process.returncode}:\n{run.output()[-2000:]}")
    raise AssertionError(f"SIPp could not bind its ports in {BIND_ATTEMPTS} attempts:\n{run.output()[-2000:]}")


def _errors(folder: pathlib.Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("*_errors.log"))
