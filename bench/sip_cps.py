"""SIP calls per second: SIPp drives INVITE -> 200 -> ACK -> BYE (no media) at rising rates against three
UASes on loopback, one after the other in the same run:

* `harness`: `python -m ivr.testing.sipharness`, our UserAgent answering every call (the SIP stack alone);
* `engine`: the real `ivr serve` (uvloop, one process: `--workers 1`), dialed number 7000 served by a
  minimal flow in a temp flows dir (`--flows`): a prompt that SIPp's BYE cuts short after 200 ms, so each
  call also opens an RTP session, starts a flow, plays media and writes its record to SQLite;
* `kamailio`: Debian's Kamailio as a minimal stateless UAS (temp config: `sl_send_reply` 200 to INVITE
  and BYE, ACK absorbed), the peer figure: a C SIP server doing the least work possible.

* `engine-w2`: the same engine as a node of two workers (`--workers 2`, the default shape on two cores):
  SIPp's one socket reaches one worker (the kernel spreads by address) and the node spreads the calls over
  both by Call-ID (`ivr.workers.routing`);
* `engine-base` (with `--base-root DIR`): the same engine run from another checkout, e.g. the commit
  before a change (`git worktree add /tmp/base <commit>`), for a before/after in one run.

For each rate it runs `rate * seconds` calls and records failed calls, the rate SIPp achieved, call
setup time (INVITE sent -> 200 received, SIPp's `setup` response-time measure from `-trace_rtt`; SIPp
timestamps at millisecond granularity) and the UAS's CPU use (all its processes), also per call. Every
UAS is started first and the ladder is interleaved (each rate against each UAS in turn), so a change of
load on a shared machine hits all of them alike. The sustained rate is the highest one with zero failed
calls that SIPp actually achieved (within 10%); a UAS leaves the ladder at its first failing rate. SIPp
itself is single-threaded and shares the two cores, so at high rates it can be the limit (Kamailio's
column shows where): compare "achieved cps" with the UAS CPU column.

`--rounds N` runs each rate N times (each target in turn, round after round, odd rounds in reverse order)
and reports each (target, rate) as the median of its rounds, with the spread of the per-round engine /
engine-base ratios: on a shared two-core machine one UAS's CPU per call moves 10-20 % from one step to the
next, more than most changes save.

    .venv/bin/python -m bench.sip_cps [--rates 50,100,200,300,400,600] [--seconds 10] [--rounds 1]
                                      [--targets harness,engine,kamailio] [--base-root DIR]
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.engine_process import ROOT, cpu_s, free_port, serve_flow, start_engine

SCENARIO = ROOT / "tests" / "integration" / "sip" / "scenarios" / "uac_basic.xml"
_cpu_s, _free_port = cpu_s, free_port  # the names other benches import from here
__all__ = ["BENCH_FLOW", "SCENARIO", "serve_flow", "sustained"]


@dataclass(slots=True)
class Step:
    target: str
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
    cpu_ms_per_call: float = float("nan")
    """UAS CPU time (all its processes and threads) over the step, per successful call."""
    rounds: int = 1
    """How many steps this row stands for (`--rounds`: their medians, failed and calls summed)."""

    @property
    def clean(self) -> bool:
        """Every call succeeded and SIPp kept up with the offered rate (within 10%)."""
        return (self.sipp_rc == 0 and self.failed == 0 and self.successful == self.calls
                and self.achieved_cps >= 0.9 * self.rate)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _counter(screen: str, name: str) -> int:
    found = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(found[-1]) if found else 0


@dataclass(slots=True)
class Uas:
    """A running UAS under test: its process, SIP port, the number SIPp dials, and how it is described."""

    name: str
    proc: subprocess.Popen[bytes] | subprocess.Popen[str]
    port: int
    service: str
    what: str


BENCH_FLOW = """\
id: bench
version: "1"
description: calls/s benchmark - a prompt the caller's BYE cuts short
numbers: ["7000"]
dialects: [en]
default_dialect: en
queues: [general]
on_error: {queue: general}
start: hello
prompts:
  hello:
    en: Thank you for calling. Please hold the line while we connect you to the next available agent.
nodes:
  hello: {type: play, prompt: hello, next: bye}
  bye: {type: hangup}
"""

KAMAILIO_CFG = """\
#!KAMAILIO
# Minimal stateless UAS for the calls/s peer figure: 200 to INVITE (with a Contact) and BYE, ACK absorbed.
debug=0
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {{
    if (method=="ACK") {{ exit; }}
    if (method=="INVITE") {{
        append_to_reply("Contact: <sip:uas@127.0.0.1:{port}>\\r\\n");
    }}
    sl_send_reply("200", "OK");
    exit;
}}
"""


def _start_harness(workdir: pathlib.Path) -> Uas:
    proc = subprocess.Popen([sys.executable, "-m", "ivr.testing.sipharness", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"listening UDP \S+ (\d+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"harness did not start: {line!r}")
    return Uas("harness", proc, int(match.group(1)), "100", "`python -m ivr.testing.sipharness` (our SIP stack alone)")


def _start_engine(workdir: pathlib.Path) -> Uas:
    proc, sip, _http = start_engine(workdir, BENCH_FLOW)
    return Uas("engine", proc, sip, "7000",
               f"`ivr serve --flows TMP` at {_describe(ROOT)} (flow with a prompt: RTP session, flow run, record)")


BASE_ROOT: pathlib.Path | None = None
"""`--base-root`: the checkout `engine-base` runs from."""


def _start_engine_base(workdir: pathlib.Path) -> Uas:
    if BASE_ROOT is None:
        raise FileNotFoundError("engine-base needs --base-root DIR (a checkout, e.g. from `git worktree add`)")
    proc, sip, _http = start_engine(workdir, BENCH_FLOW, root=BASE_ROOT)
    return Uas("engine-base", proc, sip, "7000", f"the same engine at {_describe(BASE_ROOT)} (`--base-root`)")


def _start_engine_workers(workdir: pathlib.Path) -> Uas:
    """`ivr serve --workers 2`: the node's SIP port shared by two engine processes; the node spreads new calls
    over them by Call-ID, whatever SIPp's `-t`."""
    proc, sip, _http = start_engine(workdir, BENCH_FLOW, workers=2)
    return Uas("engine-w2", proc, sip, "7000", f"`ivr serve --workers 2` at {_describe(ROOT)}")


def _describe(root: pathlib.Path) -> str:
    """The checkout's commit, with a note when its tree has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _start_kamailio(workdir: pathlib.Path) -> Uas:
    binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
    modules = next((d for d in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules",
                                f"/usr/lib/{platform.machine()}-linux-gnu/kamailio/modules")
                    if pathlib.Path(d, "sl.so").exists()), None)
    if not pathlib.Path(binary).exists() or modules is None:
        raise FileNotFoundError("kamailio not installed (apt install kamailio)")
    port = _free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, modules=modules + "/"))
    log = (workdir / "kamailio.log").open("wb")
    proc = subprocess.Popen([binary, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8", "-Y", str(workdir),
                             "-P", str(workdir / "kamailio.pid")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # bound once Kamailio holds the port
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited with {proc.returncode}: see {workdir / 'kamailio.log'}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return Uas("kamailio", proc, port, "100",
                           f"Kamailio {_kamailio_version(binary)} stateless UAS (`sl`, 2 UDP workers)")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("kamailio did not bind its port in 15 s")


def _kamailio_version(binary: str) -> str:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"kamailio (\S+)", out)
    return match.group(1) if match else "?"


def _stop(uas: Uas) -> None:
    uas.proc.send_signal(signal.SIGTERM)
    try:
        uas.proc.wait(30)
    except subprocess.TimeoutExpired:
        uas.proc.kill()
        uas.proc.wait()


STARTERS = {"harness": _start_harness, "engine": _start_engine, "engine-base": _start_engine_base,
            "engine-w2": _start_engine_workers, "kamailio": _start_kamailio}
SIPP_TRANSPORT = "u1"
"""`--sipp-transport`: SIPp's `-t` for every target (u1: one socket; un: one socket per call)."""


def _run_step(uas: Uas, rate: int, calls: int, workdir: pathlib.Path) -> Step:
    step_dir = workdir / f"{uas.name}-r{rate}"
    step_dir.mkdir()
    args = [
        "sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", "0", "-m", str(calls), "-r", str(rate),
        "-t", SIPP_TRANSPORT, "-max_socket", "4096",
        "-l", str(max(calls, 100)), "-nostdin", "-timer_resol", "1", "-trace_rtt", "-rtt_freq", "1",
        "-timeout", f"{int(calls / rate) + 60}s", "-timeout_error", "-s", uas.service, f"127.0.0.1:{uas.port}",
    ]
    cpu_before, wall_before = _cpu_s(uas.proc.pid), time.monotonic()
    done = subprocess.run(args, cwd=step_dir, capture_output=True, text=True, check=False)
    wall = time.monotonic() - wall_before
    cpu = _cpu_s(uas.proc.pid) - cpu_before
    times: list[float] = []
    for rtt in step_dir.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2] == "setup":
                times.append(float(parts[1]))
    rate_match = re.findall(r"Call Rate\s*\|\s*[\d.]+ cps\s*\|\s*([\d.]+) cps", done.stdout)
    step = Step(
        target=uas.name, rate=rate, calls=calls, successful=_counter(done.stdout, "Successful call"),
        failed=_counter(done.stdout, "Failed call"),
        achieved_cps=float(rate_match[-1]) if rate_match else 0.0,
        p50_ms=_percentile(times, 0.50), p99_ms=_percentile(times, 0.99), max_ms=max(times, default=0.0),
        uas_cpu_pct=100.0 * cpu / wall if wall else 0.0, sipp_rc=done.returncode,
    )
    step.cpu_ms_per_call = 1000.0 * cpu / step.successful if step.successful else float("nan")
    return step


def merge_rounds(steps: Sequence[Step]) -> list[Step]:
    """One row per (target, rate), in first-seen order: the median of its rounds' figures, failed calls and calls
    summed, the worst SIPp exit code (so a row is clean only when every round was)."""
    groups: dict[tuple[str, int], list[Step]] = {}
    for step in steps:
        groups.setdefault((step.target, step.rate), []).append(step)
    merged = []
    for (target, rate), rounds in groups.items():
        def median(pick: Callable[[Step], float], rounds: list[Step] = rounds) -> float:
            return statistics.median(pick(step) for step in rounds)
        merged.append(Step(
            target=target, rate=rate, calls=sum(s.calls for s in rounds), successful=sum(s.successful for s in rounds),
            failed=sum(s.failed for s in rounds), achieved_cps=median(lambda s: s.achieved_cps),
            p50_ms=median(lambda s: s.p50_ms), p99_ms=median(lambda s: s.p99_ms), max_ms=max(s.max_ms for s in rounds),
            uas_cpu_pct=median(lambda s: s.uas_cpu_pct), sipp_rc=max(s.sipp_rc for s in rounds),
            cpu_ms_per_call=median(lambda s: s.cpu_ms_per_call), rounds=len(rounds),
        ))
    return merged


def round_ratios(steps: Sequence[Step], ours: str, theirs: str, rate: int) -> list[float]:
    """`ours` / `theirs` CPU per call at `rate`, round by round (the n-th step of each at that rate)."""
    mine = [s.cpu_ms_per_call for s in steps if s.target == ours and s.rate == rate and s.successful]
    base = [s.cpu_ms_per_call for s in steps if s.target == theirs and s.rate == rate and s.successful]
    return [a / b for a, b in zip(mine, base, strict=False)]


def sustained(steps: Sequence[Step], target: str) -> Step | None:
    return max((s for s in steps if s.clean and s.target == target), key=lambda s: s.rate, default=None)


def report(steps: Sequence[Step], uases: Sequence[tuple[str, str]], skipped: Sequence[str], command: str) -> str:
    raw, steps = steps, merge_rounds(steps)
    rounds = max((s.rounds for s in steps), default=1)
    lines = [
        "## SIP calls per second (sip_cps)",
        "",
        f"- command: `{command}`",
        f"- machine: `{platform.machine()}`, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "- load: SIPp `uac_basic.xml` (INVITE, 100, 180, 200, ACK, 200 ms, BYE, 200; no media from SIPp) on "
        "loopback, the same rate ladder against each UAS in turn; setup = INVITE sent to 200 received",
        *[f"- `{name}`: {what}" for name, what in uases],
        *[f"- skipped: {why}" for why in skipped],
        *([f"- rounds: {rounds} per rate, each row the median of its rounds (failed and calls summed)"]
          if rounds > 1 else []),
        "",
        "| UAS | offered cps | calls | failed | achieved cps | setup p50 ms | setup p99 ms | setup max ms "
        "| UAS CPU % of one core | UAS CPU ms per call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [name for name, _ in uases]
    for s in sorted(steps, key=lambda s: order.index(s.target) if s.target in order else len(order)):
        lines.append(
            f"| {s.target} | {s.rate} | {s.calls} | {s.calls - s.successful} | {s.achieved_cps:.1f} "
            f"| {s.p50_ms:.0f} | {s.p99_ms:.0f} | {s.max_ms:.0f} | {s.uas_cpu_pct:.0f} | {s.cpu_ms_per_call:.2f} |"
        )
    lines.append("")
    best = {name: sustained(steps, name) for name, _ in uases}
    for name, step in best.items():
        if step is None:
            lines.append(f"- **{name}: none of the offered rates completed without failed calls.**")
        else:
            lines.append(f"- **{name}: sustained {step.rate} calls/s with zero failed calls** (setup p50 "
                         f"{step.p50_ms:.0f} ms, p99 {step.p99_ms:.0f} ms; UAS at {step.uas_cpu_pct:.0f}% of one core)")
    by_step = {(st.target, st.rate): st for st in steps if st.successful}
    ratios = [
        f"{rate} cps {ours.cpu_ms_per_call:.2f} / {theirs.cpu_ms_per_call:.2f} ms = "
        f"**{ours.cpu_ms_per_call / theirs.cpu_ms_per_call:.2f}**"
        + _spread(round_ratios(raw, target, "engine-base", rate))
        for (target, rate), ours in by_step.items()
        if target == "engine" and (theirs := by_step.get(("engine-base", rate))) is not None
    ]
    if ratios:
        lines.append("- engine / engine-base CPU per call at the same offered rate: " + ", ".join(ratios))
    peer = best.get("kamailio")
    if peer is not None:
        for name in ("harness", "engine", "engine-w2", "engine-base"):
            ours = best.get(name)
            if ours is not None:
                ours_ms, peer_ms = (10.0 * x.uas_cpu_pct / x.rate for x in (ours, peer))
                lines.append(f"- {name} / kamailio: {ours.rate} / {peer.rate} calls/s = "
                             f"**{ours.rate / peer.rate:.2f}** of the peer's sustained rate; CPU per call "
                             f"{ours_ms:.2f} ms vs {peer_ms:.2f} ms ({ours_ms / peer_ms:.1f}x)"
                             if peer_ms else f"- {name} / kamailio: {ours.rate / peer.rate:.2f}")
        if any(s.target == "kamailio" and s.clean for s in steps) and peer.rate == max(
                s.rate for s in steps if s.target == "kamailio"):
            lines.append("- Kamailio passed every offered rate: its figure is bounded by the ladder and by SIPp "
                         "(one thread on the same two cores), not by Kamailio.")
    return "\n".join(lines)


def _spread(ratios: Sequence[float]) -> str:
    """" (rounds 0.91-0.99)" when there were several rounds."""
    return f" (rounds {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sip_cps", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rates", default="50,100,200,300,400,600", help="comma-separated offered calls/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of calls per rate")
    parser.add_argument("--max-calls", type=int, default=5000, help="cap on calls per rate")
    parser.add_argument("--rounds", type=int, default=1,
                        help="steps per rate and target, interleaved; each row reports their median")
    parser.add_argument("--targets", default="harness,engine,kamailio", help="UASes to drive, in order")
    parser.add_argument("--base-root", type=pathlib.Path, default=None,
                        help="a checkout (e.g. `git worktree add /tmp/base HEAD`) to run as target engine-base")
    parser.add_argument("--sipp-transport", choices=("u1", "un"), default="u1",
                        help="SIPp -t: u1 one socket (a trunk, an SBC), un one per call")
    args = parser.parse_args(argv)
    global BASE_ROOT, SIPP_TRANSPORT
    BASE_ROOT = args.base_root.resolve() if args.base_root is not None else None
    SIPP_TRANSPORT = args.sipp_transport
    command = "python -m bench.sip_cps " + " ".join(argv if argv is not None else sys.argv[1:])
    if shutil.which("sipp") is None:
        print("## SIP calls per second (sip_cps)\n\nskipped: sipp not installed (apt install sip-tester)")
        return 1
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in STARTERS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(STARTERS)})")
    steps: list[Step] = []
    uases: list[tuple[str, str]] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sip_cps_") as tmp:
        running: list[tuple[Uas, pathlib.Path]] = []
        try:
            for target in targets:
                workdir = pathlib.Path(tmp) / target
                workdir.mkdir()
                try:
                    uas = STARTERS[target](workdir)
                except FileNotFoundError as exc:
                    skipped.append(f"{target}: {exc}")
                    continue
                uases.append((uas.name, uas.what))
                running.append((uas, workdir))
                print(f"   {target}: UAS on port {uas.port}", file=sys.stderr, flush=True)
            for rate in rates:
                for round_ in range(max(1, args.rounds)):
                    # Odd rounds take the targets in reverse order, so neither of two compared UASes always
                    # runs first (after the other's step, in the same window of a shared machine's load).
                    for uas, workdir in running if round_ % 2 == 0 else running[::-1]:
                        if any(s.target == uas.name and not s.clean for s in steps):
                            continue  # left the ladder at its first failing step
                        step_dir = workdir / f"round{round_}" if round_ else workdir
                        step_dir.mkdir(exist_ok=True)
                        step = _run_step(uas, rate, min(int(rate * args.seconds), args.max_calls), step_dir)
                        steps.append(step)
                        print(f"   {uas.name} {rate} cps: {step.calls - step.successful} failed, "
                              f"{step.achieved_cps:.0f} achieved, {step.cpu_ms_per_call:.2f} ms CPU per call",
                              file=sys.stderr, flush=True)
        finally:
            for uas, _ in running:
                _stop(uas)
    print(report(steps, uases, skipped, command.strip()))
    return 0 if any(s.clean for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
