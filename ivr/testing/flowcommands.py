"""What the `ivr` subcommands that run flows with a scripted caller do (simulate, test-flows,
demo-backend); `cli.py` parses arguments and calls one of these. Each returns the exit code: 0 ok,
1 found wanting."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ivr.flow import Flow, FlowLoadError, load_flow
from ivr.testing.simcall import Turn, TurnKind


def _load_or_report(path: str, out: TextIO) -> Flow | None:
    try:
        return load_flow(path)
    except FlowLoadError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        return None


def simulate_call(
    flow_path: str,
    turns: Sequence[tuple[str, str]],
    *,
    caller: str,
    time: str | None,
    backend: str | None,
    as_json: bool,
    out: TextIO = sys.stdout,
) -> int:
    """One scripted call; prints each step and the outcome line (or the whole journey as JSON)."""
    from ivr.testing.flowsim import DEFAULT_TIME, format_steps, parse_time, simulate, to_json

    flow = _load_or_report(flow_path, out)
    if flow is None:
        return 1
    script = [Turn(TurnKind(kind), value) for kind, value in turns]
    when = parse_time(time or DEFAULT_TIME, flow)
    sim = asyncio.run(simulate(flow, script, caller=caller, when=when, backend=backend))
    if as_json:
        json.dump(to_json(sim), out, indent=2, ensure_ascii=False, default=str)
        out.write("\n")
    else:
        print(
            f"flow {flow.id} {flow.version} · caller {caller} → {sim.record.dialed} · {when.isoformat()}",
            file=out,
        )
        for line in format_steps(sim):
            print(line, file=out)
    return 0


def run_flow_tests(paths: Sequence[str], *, out: TextIO = sys.stdout) -> int:
    from ivr.testing.flowtest import run_files

    files = list(paths) or sorted(str(p) for p in Path("flows/tests").glob("*.yaml"))
    if not files:
        print("no flow test files found", file=out)
        return 1
    report = asyncio.run(run_files(files))
    for line in report.lines():
        print(line, file=out)
    return 0 if report.ok else 1


def serve_demo_backend(host: str, port: int) -> int:
    from ivr.demo_backend import serve_forever

    asyncio.run(serve_forever(host, port))
    return 0
