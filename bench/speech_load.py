"""Speaking callers per second: the demo hotline under a load generator with every caller saying their need.

`ivr serve` runs flows/hotline.yaml with the embedded defaults (PocketSphinx, the default decode pool).
A separate load generator on the same 2 cores places calls at R calls/s for 30 s; each caller waits
through the Mandarin greeting, says "I want to file a claim" (Festival speech from
tests/scenarios/claim_en_speech.yaml) and stays on the line 17 s. A call passes when its finished record
says queue claims, intent claim, dialect en and the expected path: the need was heard, understood and
routed before the caller hung up. Also recorded: call setup time, the RTP the callers received (loss,
jitter), the engine's peak resident memory, and the CPU a call of the engine (all its processes) and of
the generator.

Generators (`--generator`, default `ivr`):
- `ivr`: `ivr load` (our own SIP UA and RTP in Python), which listens for the IVR's prompts before speaking.
- `sipp`: SIPp (`bench.sipp_caller`, bench/sipp/speech_caller.xml), the way telecom engineers load a voice
  platform: each call replays a G.711 pcap of the whole call built here from the same clip (silence, the need
  22.2 s after the answer, where `ivr load`'s caller says it after the Mandarin greeting, silence to the BYE);
  a new caller number per call. SIPp does not read the engine's RTP, so its loss column is the machine's UDP
  receive drops outside SIPp's own socket. Needs `sipp` (apt install sip-tester) and root (raw sockets).

`--generator sipp,ivr --rounds 3` runs the generators (and, with `--base-root`, the trees) in alternating order
round by round (a pair of runs is not an A/B on a busy 2-core machine: bench/RESULTS.md, 2026-12-07 00:44).
Each row also says how many turns the engine shed (`speech_shed`: the decoders more than `asr_max_lag_s` behind when
the caller started speaking; every miss of this bench so far) and the largest lag one was shed at.
`--set KEY=VALUE` gives the engine a setting over its embedded defaults; `--base-set` gives the base tree its own
instead (`--base-root . --base-set asr_max_lag_s=2 --set asr_max_lag_s=4`: one setting, A/B, on one tree).

    .venv/bin/python -m bench.speech_load [--cps 2,5,8] [--seconds 30] [--generator ivr|sipp|sipp,ivr] [--rounds N]
        [--base-root DIR] [--set KEY=VALUE ...] [--base-set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import secrets
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import sipp_caller  # noqa: E402
from bench.engine_process import CLK_TCK, children, free_port, serve_flow, wait_ready  # noqa: E402
from ivr.testing.scenario import load_scenarios  # noqa: E402

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


def shed_turns(engine_log: pathlib.Path) -> dict[str, float]:
    """The turns the engine shed (`speech_shed`: the decoders were too far behind when the caller started speaking),
    and the largest decoder lag one was shed at, from the engine's JSON log."""
    count, worst = 0, 0.0
    with engine_log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"speech_shed"' not in line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == "speech_shed":
                count += 1
                worst = max(worst, float(entry.get("lag_s", 0.0)))
    return {"turns": count, "max_lag_s": worst}


def one_rate(cps: float, seconds: float, root: pathlib.Path = ROOT, generator: str = "ivr",
             settings: tuple[str, ...] = ()) -> dict[str, object]:
    """One load run against `ivr serve` by `generator` (`ivr` or `sipp`); the engine runs from the checkout `root`
    (and so does `ivr load`), with `settings` (KEY=VALUE) over its embedded defaults."""
    os.environ.setdefault("IVR_API_TOKEN", secrets.token_hex(16))  # the engine, `ivr load` and the SIPp judge
    with tempfile.TemporaryDirectory(prefix="bench-speech-load-") as tmp:
        extra = [arg for setting in settings for arg in ("--set", setting)]
        proc, sip, http = serve_flow(pathlib.Path(tmp), (root / "flows" / "hotline.yaml").read_text(), *extra,
                                     root=root)
        try:
            wait_ready(http, proc=proc)  # every worker has joined the SIP port: no INVITE goes to a port nobody reads
            engine_before = tree_cpu_s(proc.pid)
            generator_before = children_cpu_s()
            if generator == "sipp":
                scenario = load_scenarios(SCENARIO)[0]
                report: dict[str, object] = sipp_caller.load(
                    pathlib.Path(tmp), scenario, sip_port=sip, media_port=free_port(), local_port=free_port(),
                    cps=cps, seconds=seconds, api=f"http://127.0.0.1:{http}")
            else:
                load = subprocess.run(
                    [sys.executable, "-m", "ivr.cli", "--log-level", "warning", "load", f"sip:95519@127.0.0.1:{sip}",
                     "--cps", str(cps), "--duration", str(seconds), "--scenario", str(SCENARIO),
                     "--api", f"http://127.0.0.1:{http}", "--json"],
                    cwd=root, capture_output=True, text=True, timeout=seconds + 180,
                )
                report = json.loads(load.stdout[load.stdout.index("{"):])
            report["engine_peak_rss_mb"] = peak_rss_mb(proc.pid)
            calls = max(1, int(report["calls"]))  # type: ignore[call-overload]
            # SIPp's own CPU from its exit status; `ivr load`'s as this process's children's (it is the only one).
            generator_s = report.get("sipp_cpu_s", children_cpu_s() - generator_before)
            report["cpu_ms_per_call"] = {
                "engine": 1000 * (tree_cpu_s(proc.pid) - engine_before) / calls,
                "generator": 1000 * float(generator_s) / calls,  # type: ignore[arg-type]
            }
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        report["shed"] = shed_turns(pathlib.Path(tmp) / "engine.log")
        return report


def plan(rates: list[float], trees: list[tuple[str, pathlib.Path]], generators: list[str],
         rounds: int) -> list[tuple[float, str, pathlib.Path, str]]:
    """(rate, tree, root, generator) in run order: per rate, `rounds` rounds; each round runs every generator on
    every tree, the generators' and the trees' order reversed every other round (alternating, so neither always
    runs first: the run after another starts as that one's engine winds down, bench/RESULTS.md 00:44)."""
    runs = []
    for cps in rates:
        for index in range(rounds):
            flip = index % 2 == 1
            order, tree_order = (generators[::-1], trees[::-1]) if flip else (generators, trees)
            runs += [(cps, tree, root, generator) for generator in order for tree, root in tree_order]
    return runs


def row(tree: str, generator: str, cps: float, r: dict[str, object]) -> str:
    calls = int(r["calls"])  # type: ignore[call-overload]
    answered = int(r["answered"])  # type: ignore[call-overload]
    understood = calls - int(r["failed"])  # type: ignore[call-overload]
    setup, audio, cpu, shed = r["setup_ms"], r["audio"], r["cpu_ms_per_call"], r["shed"]
    assert isinstance(setup, dict) and isinstance(audio, dict) and isinstance(cpu, dict) and isinstance(shed, dict)
    if "loss_pct" in audio:
        loss = f"{audio['loss_pct']:.3f} % heard by callers"
    else:
        loss = f"{audio.get('udp_receive_drops', 0)} UDP drops"
    jitter = f"{audio['jitter_ms_p95']:.1f}" if "jitter_ms_p95" in audio else "-"
    return (f"| {tree} | {generator} | {cps:g} | {calls} | {answered} | {understood} "
            f"({100 * understood / max(1, calls):.0f}%) | {shed['turns']} ({shed['max_lag_s']:.1f}) "
            f"| {setup.get('p95', float('nan')):.0f} | {loss} | {jitter} "
            f"| {r['engine_peak_rss_mb']:.0f} | {cpu['engine']:.0f} / {cpu['generator']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cps", default="2,5,8,12", help="comma-separated call rates")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--base-root", type=pathlib.Path, default=None,
                        help="also run each rate against another checkout (e.g. `git archive` of the commit before)")
    parser.add_argument("--generator", default="ivr",
                        help="ivr (`ivr load`, the default), sipp (SIPp replaying a pcap), or both: sipp,ivr")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds per rate, generators and trees in alternating order")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="an engine setting over the embedded defaults, for every tree (repeatable)")
    parser.add_argument("--base-set", dest="base_settings", action="append", default=None, metavar="KEY=VALUE",
                        help="the base tree's settings instead of --set's (repeatable): A/B one setting on one tree "
                             "with --base-root .")
    args = parser.parse_args()
    generators = args.generator.split(",")
    if not set(generators) <= {"ivr", "sipp"} or not 1 <= args.rounds <= 10:
        parser.error("--generator takes ivr and/or sipp; --rounds 1 to 10")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    trees = [("this tree", ROOT)] + ([("base", args.base_root)] if args.base_root else [])
    settings = {"this tree": tuple(args.settings),
                "base": tuple(args.settings if args.base_settings is None else args.base_settings)}
    for cps, tree, root, generator in plan([float(c) for c in args.cps.split(",")], trees, generators, args.rounds):
        print(f"speech_load: {tree}, {generator}, {cps:g} cps for {args.seconds:g} s ...", file=sys.stderr, flush=True)
        try:
            r = one_rate(cps, args.seconds, root, generator, settings[tree])
        except RuntimeError as exc:  # the engine did not start (a port taken meanwhile by another program): again
            print(f"speech_load: {exc}; starting the engine again", file=sys.stderr, flush=True)
            r = one_rate(cps, args.seconds, root, generator, settings[tree])
        print(f"speech_load: {generator} {cps:g} cps failures: {r['failures']}", file=sys.stderr, flush=True)
        if generator == "sipp":
            print(f"speech_load: sipp failed records {r['failed_records']}; SIPp peak threads "
                  f"{r['sipp_peak_threads']}, exit {r['sipp_returncode']}", file=sys.stderr, flush=True)
        rows.append(row(tree, generator, cps, r))
        print(rows[-1], file=sys.stderr, flush=True)
    print("## Speaking callers per second (the demo hotline under a load generator)\n")
    base = f" --base-root {args.base_root}" if args.base_root else ""
    base += "".join(f" --set {s}" for s in args.settings)
    base += "".join(f" --base-set {s}" for s in args.base_settings or ())
    sipp = f" · {sipp_caller.sipp_version()}" if "sipp" in generators else ""
    print(f"Command: `python -m bench.speech_load --cps {args.cps} --seconds {args.seconds:g}{base} --generator "
          f"{args.generator} --rounds {args.rounds}` · machine: {platform.machine()}, nproc {os.cpu_count()} · "
          f"{started}{sipp}\n")
    print("Engine and load generator share the machine. Understood = the finished record says queue claims, "
          "intent claim, dialect en (the need heard and routed before the caller hung up, 17 s after speaking).\n")
    print("| tree | generator | calls/s | calls | answered | understood | turns shed (largest lag s) | setup p95 ms "
          "| loss | jitter p95 ms | engine peak RSS MB (all its processes) "
          "| CPU ms per call: engine (all its processes) / load generator |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
