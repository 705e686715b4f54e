"""What the `ivr` flow subcommands do (validate, schema, graph); `cli.py` parses arguments and calls
one of these. Each returns the exit code: 0 ok, 1 found wanting. Running a flow with a scripted
caller (`simulate`, `test-flows`) is a testing tool: `ivr.testing.flowcommands`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ivr.flow.loader import check_file
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
        result = check_file(path, fallbacks=fallbacks, today=dt.date.today())
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
