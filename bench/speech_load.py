"""Speaking callers per second: the demo hotline under `ivr load` with every caller saying their need.

`ivr serve` runs flows/hotline.yaml with the embedded defaults (PocketSphinx, the default decode pool).
A separate `ivr load` process (our SIP UAs with RTP, on the same 2 cores) places calls at R calls/s
for 30 s; each caller waits through the Mandarin greeting, says "I want to file a claim" (Festival /
espeak-ng speech from tests/scenarios/claim_en_speech.yaml) and stays on the line 17 s. A call
passes when its finished record says queue claims, intent claim, dialect en and the expected path:
the need was heard, understood and routed before the caller hung up. Also recorded: call setup time,
the RTP the callers received (loss, jitter), and the engine's peak resident memory.

    .venv/bin/python -m bench.speech_load [--cps 2,5,8] [--seconds 30]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_process import CLK_TCK, children, serve_flow, wait_ready  # noqa: E402

SCENARIO = ROOT / "tests" / "scenarios" / "claim_en_speech.yaml"


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the engine and its child processes (the decoder hosts)."""
    total = 0.0
    for proc in (pid, *descendants(pid)):
        try:
            status = pathlib.Path(f"/proc/{proc}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited since it was listed
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process so far; 0 for one that exited since it was listed."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (the engine's workers, and their decoder processes)."""
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and every process under it."""
    return sum(process_cpu_s(p) for p in (pid, *descendants(pid)))


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the load generator once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_rate(cps: float, seconds: float, root: pathlib.Path = ROOT) -> dict[str, object]:
    """One load run against `ivr serve`; engine and load generator both run from the checkout `root`."""
    with tempfile.TemporaryDirectory(prefix="bench-speech-load-") as tmp:
        proc, sip, http = serve_flow(pathlib.Path(tmp), (root / "flows" / "hotline.yaml").read_text(), root=root)
        try:
            wait_ready(http)  # every worker has joined the SIP port: no INVITE is sent to a port nobody reads
            engine_before = tree_cpu_s(proc.pid)
            generator_before = children_cpu_s()
            load = subprocess.run(
                [sys.executable, "-m", "ivr.cli", "--log-level", "warning", "load", f"sip:95519@127.0.0.1:{sip}",
                 "--cps", str(cps), "--duration", str(seconds), "--scenario", str(SCENARIO),
                 "--api", f"http://127.0.0.1:{http}", "--json"],
                cwd=root, capture_output=True, text=True, timeout=seconds + 180,
            )
            report: dict[str, object] = json.loads(load.stdout[load.stdout.index("{"):])
            report["engine_peak_rss_mb"] = peak_rss_mb(proc.pid)
            calls = max(1, int(report["calls"]))  # type: ignore[call-overload]
            report["cpu_ms_per_call"] = {
                "engine": 1000 * (tree_cpu_s(proc.pid) - engine_before) / calls,
                "generator": 1000 * (children_cpu_s() - generator_before) / calls,
            }
            return report
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cps", default="2,5,8,12", help="comma-separated call rates")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--base-root", type=pathlib.Path, default=None,
                        help="also run each rate against another checkout (e.g. `git archive` of the commit before)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    trees = [("this tree", ROOT)] + ([("base", args.base_root)] if args.base_root else [])
    for cps, (tree, root) in ((float(c), t) for c in args.cps.split(",") for t in trees):
        print(f"speech_load: {tree}, {cps:g} cps for {args.seconds:g} s ...", file=sys.stderr, flush=True)
        r = one_rate(cps, args.seconds, root)
        calls = int(r["calls"])  # type: ignore[call-overload]
        answered = int(r["answered"])  # type: ignore[call-overload]
        understood = calls - int(r["failed"])  # type: ignore[call-overload]
        setup = r["setup_ms"]
        audio = r["audio"]
        cpu = r["cpu_ms_per_call"]
        print(f"speech_load: {cps:g} cps failures: {r['failures']}", file=sys.stderr, flush=True)
        assert isinstance(setup, dict) and isinstance(audio, dict) and isinstance(cpu, dict)
        rows.append(
            f"| {tree} | {cps:g} | {calls} | {answered} | {understood} ({100 * understood / max(1, calls):.0f}%) "
            f"| {setup.get('p95', float('nan')):.0f} | {audio.get('loss_pct', float('nan')):.3f} "
            f"| {audio.get('jitter_ms_p95', float('nan')):.1f} | {r['engine_peak_rss_mb']:.0f} "
            f"| {cpu['engine']:.0f} / {cpu['generator']:.0f} |"
        )
    print("## Speaking callers per second (the demo hotline under `ivr load`)\n")
    base = f" --base-root {args.base_root}" if args.base_root else ""
    print(f"Command: `python -m bench.speech_load --cps {args.cps} --seconds {args.seconds:g}{base}` · machine: "
          f"{platform.machine()}, nproc {os.cpu_count()} · {started}\n")
    print("Engine and load generator share the machine. Understood = the finished record says queue claims, "
          "intent claim, dialect en (the need heard and routed before the caller hung up, 17 s after speaking).\n")
    print("| tree | calls/s | calls | answered | understood | setup p95 ms | RTP loss % | jitter p95 ms "
          "| engine peak RSS MB (all its processes) | CPU ms per call: engine (all its processes) / load generator |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
