"""Run every benchmark and write bench/RESULTS.md with the machine, date and command of each.

Usage: python -m bench [NAME ...]   (default: all). A benchmark that fails keeps its previous section
and the failure is reported; the exit code is 1 if any failed.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
ORDER = (
    "sip_parse", "sip_cps", "media", "media_calls", "tls", "asr", "speech_load", "nlu", "acd", "flow_steps", "tts",
    "store", "cluster", "flood", "speech_eval", "recording",
)
TIMEOUT_S = 1800


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^<!-- bench:(\w+) -->\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def main(argv: list[str]) -> int:
    names = argv or [n for n in ORDER if (HERE / f"{n}.py").exists()]
    previous = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    for name in names:
        command = f"{sys.executable} -m bench.{name}"
        print(f"== bench {name}: {command}", file=sys.stderr, flush=True)
        started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        # Benchmarks print their section on stdout; log lines (structlog's default is stdout too)
        # must not land in RESULTS.md, so each benchmark runs with logging configured to stderr.
        proc = subprocess.run(
            [sys.executable, "-c", f"from ivr.logconfig import configure_logging; configure_logging('warning', "
             f"json=True); import runpy; runpy.run_module('bench.{name}', run_name='__main__')"],
            cwd=HERE.parent, capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        sys.stderr.write(proc.stderr[-4000:])
        if proc.returncode != 0:
            failed.append(name)
            print(f"!! bench {name} failed with exit code {proc.returncode}", file=sys.stderr)
            continue
        header = (f"_Command:_ `python -m bench {name}` · _Machine:_ {_machine()} · _Date:_ {started}\n\n")
        previous[name] = header + proc.stdout.strip() + "\n\n"
    body = "".join(f"<!-- bench:{n} -->\n{previous[n]}" for n in ORDER if n in previous)
    body += "".join(f"<!-- bench:{n} -->\n{s}" for n, s in previous.items() if n not in ORDER)
    RESULTS.write_text(
        "# Benchmark results\n\nWritten by `make bench` (`python -m bench`); each section says the command, "
        "machine and date of its run. Compare figures as ratios within one run: these machines are "
        "shared and noisy.\n\n" + body
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
