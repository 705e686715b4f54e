"""What the `ivr` flow subcommands do (validate, schema, simulate, test-flows, graph); `cli.py`
parses arguments and calls one of these. Each returns the exit code: 0 ok, 1 found wanting."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ivr.flow.errors import FlowLoadError
from ivr.flow.loader import check_file, load_flow
from ivr.flow.model import DEFAULT_FALLBACKS


def validate_files(
    paths: Sequence[str],
    *,
    warnings: bool = False,
    fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS,
    out: TextIO = sys.stdout,
) -> int:
    """Print `path:line:col: message` for every problem; 0 when every file is valid. `fallbacks`:
    the dialect packs' fallback chains, as the engine loads flows with them."""
    failed = False
    for path in paths:
        # Trains the classifier too: phrases that cannot train it are an error.
        result = check_file(path, fallbacks=fallbacks)
        for problem in result.errors:
            print(problem, file=out)
        if warnings:
            for problem in result.warnings:
                print(problem, file=out)
        if result.errors:
            failed = True
            print(f"{path}: {len(result.errors)} error(s)", file=out)
        else:
            note = (
                f" ({len(result.warnings)} warning(s); --warnings to list)"
                if result.warnings and not warnings
                else ""
            )
            print(f"{path}: ok{note}", file=out)
    return 1 if failed else 0


def print_schema(out: TextIO = sys.stdout) -> int:
    from ivr.flow.jsonschema import flow_json_schema

    json.dump(flow_json_schema(), out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def _load_or_report(path: str, out: TextIO) -> object:
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
    from ivr.flow.model import Flow
    from ivr.flow.simulate import DEFAULT_TIME, format_steps, parse_time, simulate, to_json
    from ivr.testing.simcall import Turn, TurnKind

    flow = _load_or_report(flow_path, out)
    if not isinstance(flow, Flow):
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
    from ivr.flow.flowtest import run_files

    files = list(paths) or sorted(str(p) for p in Path("flows/tests").glob("*.yaml"))
    if not files:
        print("no flow test files found", file=out)
        return 1
    report = asyncio.run(run_files(files))
    for line in report.lines():
        print(line, file=out)
    return 0 if report.ok else 1


def draw_graph(flow_path: str, output: str, *, out: TextIO = sys.stdout) -> int:
    """Draw the flow (even a broken one, as far as it parses); 1 if it has errors."""
    from ivr.flow.errors import Severity
    from ivr.flow.graph import render
    from ivr.flow.loader import parse_spec
    from ivr.flow.model import DEFAULT_FALLBACKS

    try:
        text = Path(flow_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{flow_path}:1:1: cannot read flow file: {exc}", file=out)
        return 1
    spec, conv = parse_spec(text, flow_path, DEFAULT_FALLBACKS)
    errors = [p for p in conv.problems if p.severity is Severity.ERROR]
    for problem in errors:
        print(problem, file=out)
    if spec is None:
        return 1
    print(f"wrote {render(spec, output)}", file=out)
    return 1 if errors else 0


def serve_demo_backend(host: str, port: int) -> int:
    from ivr.demo_backend import serve_forever

    asyncio.run(serve_forever(host, port))
    return 0
