"""Run every benchmark and write bench/RESULTS.md with the machine, date and command of each.

Usage: python -m bench [NAME ...]   (default: all). A benchmark that fails keeps its previous section
and the failure is reported; the exit code is 1 if any failed.

Each section is the benchmark's output between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, then
whatever people wrote after it (notes, before/after tables from manual runs), kept until the next
section's marker. A rerun replaces only the output: nothing written by hand is lost. A section written
before end markers existed has no known end, so its whole old text is kept as notes under the new output.
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


def _sections(text: str) -> dict[str, tuple[str, str]]:
    """Each section's (benchmark output, notes written after it)."""
    parts = re.split(r"^<!-- bench:(\w+) -->\n", text, flags=re.M)
    sections = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        output, end, notes = body.partition(f"<!-- /bench:{name} -->\n")
        sections[name] = (output, notes) if end else ("", body)
    return sections


def _render(sections: dict[str, tuple[str, str]]) -> str:
    names = [n for n in ORDER if n in sections] + [n for n in sections if n not in ORDER]
    return "".join(f"<!-- bench:{n} -->\n{sections[n][0]}<!-- /bench:{n} -->\n{sections[n][1]}" for n in names)


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
        previous[name] = (header + proc.stdout.strip() + "\n\n", previous.get(name, ("", ""))[1])
    RESULTS.write_text(
        "# Benchmark results\n\nWritten by `make bench` (`python -m bench`); each section says the command, "
        "machine and date of its run. Compare figures as ratios within one run: these machines are "
        "shared and noisy.\n\n" + _render(previous)
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
