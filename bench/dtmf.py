"""In-band DTMF detection's cost per 20 ms frame, for calls from trunks without RFC 4733.

Such a call runs `DtmfDetector.feed` on every frame the caller sends, for the whole call, though the
caller mostly listens. Timed per frame, hot (no sockets), on three kinds of caller audio: line noise
while they listen (-50 dBFS), speech-like noise (-20 dBFS) and key presses. With `--base-root DIR` (a
`git archive` of another tree) the same runs use that tree's detector too, rounds alternating.

    .venv/bin/python -m bench.dtmf [--seconds 20] [--rounds 5] [--base-root DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROBE = """
import json, sys, time
import numpy as np
from ivr.media.goertzel import DtmfDetector
from ivr.media.tones import dtmf_sequence
seconds = float(sys.argv[1])
rng = np.random.default_rng(7)
samples = int(8000 * seconds)
audio = {
    "listening": rng.normal(0, 32768 * 10 ** (-50 / 20), samples).clip(-32768, 32767).astype(np.int16),
    "speaking": rng.normal(0, 32768 * 10 ** (-20 / 20), samples).clip(-32768, 32767).astype(np.int16),
    "keys": np.resize(dtmf_sequence("1234567890*#"), samples).astype(np.int16),
}
out = {}
for name, pcm in audio.items():
    detector = DtmfDetector()
    frames = [pcm[i : i + 160] for i in range(0, pcm.size - 159, 160)]
    start = time.process_time()
    for frame in frames:
        detector.feed(frame)
    out[name] = (time.process_time() - start) / len(frames) * 1e6
print(json.dumps(out))
"""


def one_round(root: pathlib.Path, seconds: float) -> dict[str, float]:
    """Microseconds of CPU per frame for each kind of audio, with `root`'s detector."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(seconds)], env=env, cwd=root, check=True,
                          capture_output=True, text=True)
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dtmf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per kind per round (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree, alternating (default 5)")
    parser.add_argument("--base-root", type=pathlib.Path, help="another tree's root, measured the same way")
    args = parser.parse_args(argv)
    trees = [("this tree", ROOT)] + ([("base", args.base_root)] if args.base_root else [])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    for round_ in range(args.rounds):
        order = trees if round_ % 2 == 0 else trees[::-1]
        for name, root in order:
            runs[name].append(one_round(root, args.seconds))
        print(f"   round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.dtmf --seconds {args.seconds:g} --rounds {args.rounds}"
    print("## In-band DTMF detection: CPU per 20 ms frame\n")
    print(f"_Command:_ `{command}{' --base-root DIR' if args.base_root else ''}` · _Machine:_ {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()} · _Date:_ {now} · load average {load}\n")
    print("| tree | listening (-50 dBFS) us | speaking (-20 dBFS) us | keys us |")
    print("|---|---:|---:|---:|")
    for name, _ in trees:
        cells = [statistics.median(r[kind] for r in runs[name]) for kind in ("listening", "speaking", "keys")]
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
