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
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sip_cps import serve_flow  # noqa: E402

SCENARIO = ROOT / "tests" / "scenarios" / "claim_en_speech.yaml"


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the engine and its child processes (the decoder hosts)."""
    total = 0.0
    for proc in (pid, *children(pid)):
        for line in pathlib.Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def children(pid: int) -> list[int]:
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def one_rate(cps: float, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-speech-load-") as tmp:
        proc, sip, http = serve_flow(pathlib.Path(tmp), (ROOT / "flows" / "hotline.yaml").read_text())
        try:
            load = subprocess.run(
                [sys.executable, "-m", "ivr.cli", "--log-level", "warning", "load", f"sip:95519@127.0.0.1:{sip}",
                 "--cps", str(cps), "--duration", str(seconds), "--scenario", str(SCENARIO),
                 "--api", f"http://127.0.0.1:{http}", "--json"],
                cwd=ROOT, capture_output=True, text=True, timeout=seconds + 180,
            )
            report: dict[str, object] = json.loads(load.stdout[load.stdout.index("{"):])
            report["engine_peak_rss_mb"] = peak_rss_mb(proc.pid)
            return report
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cps", default="2,5,8,12", help="comma-separated call rates")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for cps in (float(c) for c in args.cps.split(",")):
        print(f"speech_load: {cps:g} cps for {args.seconds:g} s ...", file=sys.stderr, flush=True)
        r = one_rate(cps, args.seconds)
        calls = int(r["calls"])  # type: ignore[call-overload]
        understood = calls - int(r["failed"])  # type: ignore[call-overload]
        setup = r["setup_ms"]
        audio = r["audio"]
        assert isinstance(setup, dict) and isinstance(audio, dict)
        rows.append(
            f"| {cps:g} | {calls} | {int(r['answered'])} | {understood} ({100 * understood / max(1, calls):.0f}%) "  # type: ignore[call-overload]
            f"| {setup.get('p95', float('nan')):.0f} | {audio.get('loss_pct', float('nan')):.3f} "
            f"| {audio.get('jitter_ms_p95', float('nan')):.1f} | {r['engine_peak_rss_mb']:.0f} |"
        )
    print("## Speaking callers per second (the demo hotline under `ivr load`)\n")
    print(f"Command: `python -m bench.speech_load --cps {args.cps} --seconds {args.seconds:g}` · machine: "
          f"{platform.machine()}, nproc {os.cpu_count()} · {started}\n")
    print("Engine and load generator share the machine. Understood = the finished record says queue claims, "
          "intent claim, dialect en (the need heard and routed before the caller hung up, 17 s after speaking).\n")
    print("| calls/s | calls | answered | understood | setup p95 ms | RTP loss % | jitter p95 ms "
          "| engine peak RSS MB (with decoder processes) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
